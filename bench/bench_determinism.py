"""One config trained five ways must give one set of numbers: the CLI in-process with OMP_NUM_THREADS 1, 2 and
unset, the app's job manager (worker processes) with the run alone, and the same beside another run.

Prints each way's test accuracy and validation curve, and whether all five agree to the last digit.

Usage: python bench/bench_determinism.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tl_core.config import TrainConfig  # noqa: E402

#: The config a class compared across busy and quiet servers: from scratch, the short budget, animals.
ARGS = ["--data", "builtin:animals", "--backbone", "mobilenet_v2", "--labels-per-class", "25", "--val-per-class",
        "20", "--image-size", "64", "--epochs", "3", "--batch-size", "16", "--mode", "scratch", "--budget", "fixed",
        "--seed", "0"]
CONFIG = TrainConfig(data="builtin:animals", backbone="mobilenet_v2", labels_per_class=25, val_per_class=20,
                     image_size=64, epochs=3, batch_size=16, mode="scratch", budget="fixed", seed=0)
OTHER = TrainConfig(**{**CONFIG.to_dict(), "mode": "finetune", "freeze_depth": 3, "seed": 7, "epochs": 8})


def _numbers(history, test_acc) -> dict:
    return {"test_acc": test_acc, "val_curve": [h["val_acc"] for h in history],
            "train_loss": [h["train_loss"] for h in history]}


def cli(omp: str | None, store: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    out = subprocess.run([sys.executable, "-m", "tl_core", "train", *ARGS, "--store", str(store), "--json",
                          "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    return _numbers(result["history"], result["test_acc"])


def job_manager(store: Path) -> tuple[dict, dict]:
    from tl_core.runs.jobs import JobManager
    from tl_core.runs.runners import make_runner
    from tl_core.runs.store import RunStore

    runs = RunStore(store)
    manager = JobManager(runs, max_concurrent=2, runner=make_runner("local", runs, 2, warm=False))
    try:
        manager.runner.wait_ready(180)
        alone = manager.wait(manager.submit(CONFIG, owner="bench"), timeout=900)
        beside_id, other_id = manager.submit(CONFIG, owner="bench"), manager.submit(OTHER, owner="other")
        beside = manager.wait(beside_id, timeout=900)
        manager.wait(other_id, timeout=900)
    finally:
        manager.shutdown()
    return (_numbers(alone.history, alone.summary.test_acc), _numbers(beside.history, beside.summary.test_acc))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    store = Path(tempfile.mkdtemp()) / "runs.sqlite"
    ways = {f"cli OMP_NUM_THREADS={omp or 'unset'}": cli(omp, store) for omp in ("1", "2", None)}
    ways["job manager, alone"], ways["job manager, beside another run"] = job_manager(store)
    first = next(iter(ways.values()))
    same = all(w == first for w in ways.values())
    if args.json:
        print(json.dumps({"ways": ways, "identical": same}))
    else:
        for name, w in ways.items():
            print(f"{name:34} test {w['test_acc']:.3f}  val curve {w['val_curve']}")
        print(f"identical to the last digit: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
