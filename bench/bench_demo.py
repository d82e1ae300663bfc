"""The classroom demo with its default settings, timed the way the app runs it (JobManager, worker threads).

Prints the seconds from the click to the first learning-curve point and to the end, and the result sentence.
Targets on 2 CPU cores: first point <= 3 s, every run (three modes x three seeds) done <= 60 s.

Usage: python bench/bench_demo.py [--max-concurrent 1] [--runner thread|local]
`--runner local` trains in the app's worker processes (its default, TL_RUNNER=local), started and warmed before the
click as `python -m ui.launch` does; `thread` (the default here) trains in this process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tl_core.runs import demo  # noqa: E402
from tl_core.presentation import report
from tl_core.runs.jobs import JobManager  # noqa: E402
from tl_core.runs.store import RunStore  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-concurrent", type=int, default=2)
    ap.add_argument("--runner", choices=("thread", "local"), default="thread")
    args = ap.parse_args()
    demo.warm_up()  # what the app's server has done before anyone clicks
    store = RunStore(Path(tempfile.mkdtemp()) / "runs.sqlite")
    manager = JobManager(store, max_concurrent=args.max_concurrent, runner=args.runner)
    if hasattr(manager.runner, "wait_ready"):
        manager.runner.wait_ready(timeout=600)  # the workers have imported torch and warmed up, as on a server up a while

    click = time.perf_counter()
    ids = demo.submit_demo(manager, "bench")
    first_point = None
    while True:
        snaps = [manager.snapshot(i) for i in ids]
        if first_point is None and any(s.history for s in snaps):
            first_point = time.perf_counter() - click
        if all(s.done for s in snaps):
            break
        time.sleep(0.02)
    total = time.perf_counter() - click
    for s in snaps:
        print(f"{s.config.mode:9} seed {s.config.seed} {s.state:9} test acc {s.summary.get('test_acc', 0):.3f}  "
              f"{s.summary.get('wall_s', 0):5.1f} s training  cached: {s.cached_boundary}")
    runs = [store.get_run(s.run_id) for s in snaps]
    print(report.gap_sentence(runs))
    print(f"first curve point {first_point:.2f} s after the click (target <= 3 s); "
          f"all {len(ids)} runs done in {total:.1f} s (target <= 60 s), max {args.max_concurrent} at once, "
          f"runner {args.runner}")
    manager.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
