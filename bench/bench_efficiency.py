"""The Compare page's "When does transfer pay?" grid, as its button trains it: the default settings (animals,
MobileNetV2, every arm at the lesson's image size and its own default budget), three seeds per cell, queued on
the app's job manager with its two worker processes. Prints the wall time of the whole grid, each mode's share,
and the chart's cells, so "a lesson's attention" (3 minutes on a quiet 2-core machine) is a measured claim.

Usage: python bench/bench_efficiency.py [--data builtin:animals] [--seeds 3] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tl_core.config import TrainConfig  # noqa: E402


def grid(data: str, seeds: int) -> list[TrainConfig]:
    """The configs the app's button queues on `data` with the default settings (ui/efficiency.py)."""
    import tl_core
    from tl_core.engine import training
    from tl_core.inputs import data as datasets
    from tl_core.models import backbones
    from tl_core.runs import sweep

    import numpy as np

    base = TrainConfig(data=data)
    ds = datasets.load_dataset(data)
    training.resolve(base, ds)
    pool = datasets.make_split(ds, val_per_class=base.val_per_class, test_per_class=base.test_per_class,
                               labels_per_class=None, seed=base.seed)
    per_class = int(np.bincount(ds.labels[pool.train], minlength=len(ds.classes)).min())
    depth = tl_core.default_depth(len(backbones.info(base.backbone).blocks))
    configs = sweep.efficiency_configs(base, per_class, seeds=seeds, depth=depth)
    for c in configs:
        training.resolve(c, ds)
    return configs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="builtin:animals")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    from tl_core.presentation import report
    from tl_core.runs.jobs import JobManager
    from tl_core.runs.runners import make_runner
    from tl_core.runs.store import RunStore

    configs = grid(args.data, args.seeds)
    store = RunStore(Path(tempfile.mkdtemp(prefix="tl_bench_efficiency_")) / "runs.sqlite")
    manager = JobManager(store, max_concurrent=args.workers,
                         runner=make_runner("local", store, args.workers, warm=False))
    try:
        manager.runner.wait_ready(300)
        start = time.perf_counter()
        ids = [manager.submit(c, owner="bench", label="efficiency") for c in configs]
        jobs = [manager.wait(i, timeout=3600) for i in ids]
        wall = time.perf_counter() - start
    finally:
        manager.shutdown()
    runs = [store.get_run(j.run_id) for j in jobs if j.run_id]
    by_mode: dict[str, list[float]] = {}
    for r in runs:
        by_mode.setdefault(r["config"]["mode"], []).append(float(r["summary"].get("wall_s") or 0.0))
    out = {"data": args.data, "runs": len(configs), "completed": sum(r["status"] == "completed" for r in runs),
           "workers": args.workers, "wall_s": round(wall, 1),
           "run_s_by_mode": {m: {"sum": round(sum(v), 1), "median": round(statistics.median(v), 1)}
                             for m, v in by_mode.items()},
           "labels_per_class": sorted({c.labels_per_class for c in configs}),
           "image_size": configs[0].image_size, "sentence": report.efficiency_sentence(runs)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['runs']} runs ({out['completed']} completed) on {args.workers} workers: {wall:.0f} s")
        for m, v in out["run_s_by_mode"].items():
            print(f"  {m:9} {v['sum']:7.1f} s of training (median {v['median']:.1f} s a run)")
        print(out["sentence"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
