"""Where runs train: `make_runner(name)` for $TL_RUNNER's choice (see base.py)."""

from __future__ import annotations

from tl_core.runs.runners.base import RUNNER_NAMES, RunRequest, Runner, runner_name
from tl_core.runs.store import RunStore

__all__ = ["RUNNER_NAMES", "RunRequest", "Runner", "make_runner", "runner_name"]


def make_runner(name: str | None, store: RunStore, workers: int = 2, **options) -> Runner:
    name = runner_name(name)
    if name == "thread":
        from tl_core.runs.runners.inprocess import ThreadRunner

        return ThreadRunner(store)
    if name == "ray":
        from tl_core.runs.runners.ray_runner import RayRunner

        return RayRunner(store, workers, **options)
    from tl_core.runs.runners.processes import ProcessRunner

    return ProcessRunner(store, workers, **options)
