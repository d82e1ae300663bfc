"""What every runner does, wherever the training happens: one request in, the engine's events out.

The job manager (tl_core/runs/jobs.py) decides *when* a run starts (queue, order, limits); a runner decides
*where* it trains: in this process (`thread`), in a pre-started worker process (`local`, the default), or on a
Ray cluster (`ray`). `run` blocks the manager's thread until the run has ended, calls `emit` with every event
(RunStarted … RunFinished) in order, and stops within a batch once `cancel` is set. The run is recorded in the
run store by the runner, so the store holds the same rows whichever runner trained it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from tl_core.config import TrainConfig
from tl_core.events import CancelToken, EventHandler

RUNNER_NAMES = ("local", "thread", "ray")


@dataclass
class RunRequest:
    job_id: str
    owner: str
    config: TrainConfig
    dataset: Any = None  # an uploaded Dataset; None: the worker loads config.data (a built-in) itself
    plan: dict | None = None  # the run plan shown before Start (RunPlan.to_dict); None: the worker makes it


class Runner(Protocol):
    name: str

    def run(self, request: RunRequest, emit: EventHandler, cancel: CancelToken) -> None:
        """Train to the end. Raises a UserError (RunnerError for a lost worker) when the run could not train:
        the job shows its one line."""

    def shutdown(self) -> None: ...


def runner_name(name: str | None = None) -> str:
    """`name`, else $TL_RUNNER, else "local"; an unknown name is a ConfigError that lists the choices."""
    from tl_core.errors import ConfigError

    name = (name or os.environ.get("TL_RUNNER") or "local").strip().lower()
    if name not in RUNNER_NAMES:
        raise ConfigError(f"unknown runner '{name}' (TL_RUNNER): use one of {', '.join(RUNNER_NAMES)}")
    return name
