"""Is the default frozen run as good as a tuned linear probe? Kornblith et al. 2019's protocol: logistic regression
on the same frozen features, its C chosen by stratified 5-fold cross-validation on the training items, fitted by
scikit-learn on the full features. Both score the same test items after training on the same items; the mean over
seeds (each a different training set) is compared. Every built-in set and the unseen shapes zip (bench/shapes.py).
Target: every difference within 1 point.

Usage: python bench/bench_linear_probe.py [--labels-per-class 10] [--seeds 3] [--sets animals,digits,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shapes import shapes_zip  # noqa: E402
from tl_core.engine import probe, training  # noqa: E402
from tl_core.config import TrainConfig  # noqa: E402

SETS = {"animals": ("builtin:animals", "mobilenet_v2", 64), "digits": ("builtin:digits", "mobilenet_v2", 64),
        "sentiment": ("builtin:sentiment", "all-MiniLM-L6-v2", None), "shapes": (None, "mobilenet_v2", None)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels-per-class", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shapes = Path(tempfile.mkdtemp()) / "shapes.zip"
    shapes.write_bytes(shapes_zip())
    rows = []
    for name in args.sets.split(","):
        data, backbone, size = SETS[name]
        ours, tuned = [], []
        for seed in range(args.seeds):
            prep = training.prepare(TrainConfig(data=data or str(shapes), backbone=backbone, mode="frozen",
                                                image_size=size, labels_per_class=args.labels_per_class, seed=seed))
            tuned.append(probe.linear_probe(prep)["test_acc"])
            ours.append(training.fit(prep).summary["test_acc"])
        row = {"set": name, "backbone": backbone, "n_train": len(prep.y_train), "n_test": len(prep.y_test),
               "frozen_default": float(np.mean(ours)), "tuned_probe": float(np.mean(tuned)),
               "difference_points": 100 * float(np.mean(ours) - np.mean(tuned))}
        rows.append(row)
        if not args.json:
            print(f"{name:10} {backbone:17} {row['n_train']:4} train / {row['n_test']:4} test: frozen default "
                  f"{row['frozen_default']:.3f}, tuned probe {row['tuned_probe']:.3f} (mean of {args.seeds} seeds): "
                  f"{row['difference_points']:+.1f} points", flush=True)
    worst = max(abs(r["difference_points"]) for r in rows)
    if args.json:
        print(json.dumps({"labels_per_class": args.labels_per_class, "seeds": args.seeds, "sets": rows,
                          "worst_points": worst}))
    else:
        print(f"largest difference {worst:.1f} points (target: within 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
