"""Do the defaults converge? A frozen run with default settings against a tuned linear probe (Kornblith et al.
2019: logistic regression on the same frozen features, C chosen on validation), on a class-folder zip the
project has never seen (bench/shapes.py). Target: within 3 points.

Usage: python bench/bench_linear_probe.py [--backbone mobilenet_v2] [--image-size N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shapes import shapes_zip  # noqa: E402
from tl_core import probe, training  # noqa: E402
from tl_core.config import TrainConfig  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--image-size", type=int, default=None, help="default: the app's default for uploads")
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp()) / "shapes.zip"
    path.write_bytes(shapes_zip())
    prep = training.prepare(TrainConfig(data=str(path), backbone=args.backbone, mode="frozen", image_size=args.image_size))
    tuned = probe.linear_probe(prep)
    run = training.fit(prep)
    gap = 100 * (tuned["val_acc"] - run.summary["final_val_acc"])
    print(f"{args.backbone} at {prep.config.image_size}px, {len(prep.y_train)} train / {len(prep.y_val)} val images")
    print(f"tuned linear probe (C={tuned['C']:g}) val acc {tuned['val_acc']:.3f}")
    print(f"frozen run, default settings: final val acc {run.summary['final_val_acc']:.3f} "
          f"(best {run.summary['best_val_acc']:.3f}) in {run.summary['wall_s']:.1f} s")
    print(f"gap {gap:+.1f} points (target: within 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
