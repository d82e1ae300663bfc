"""One run while it trains, as one object: what the loop, its evaluations and the recipes share.

The loop's helpers take the run and nothing else, so each reads what it needs by name; a recipe that changes
what the run does (tl_core.engine.recipe_hooks) is a `RecipeHook` the loop calls at fixed moments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from tl_core.engine.activation_cache import RunActivations
from tl_core.engine.preparation import Prepared
from tl_core.engine.selection import Selection
from tl_core.engine.stepper import Stepper
from tl_core.events import CancelToken, EpochMetrics, Event
from tl_core.records import RunSummary


@dataclass
class RunResult:
    """What `training.fit` returns: the status, the curve, the summary, and the trained model when it completed."""

    run_id: str
    status: str
    config: dict
    classes: list[str]
    history: list[dict] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)
    error: str | None = None
    model: nn.Module | None = None


class RecipeHook:
    """A recipe that changes what a run does, called by the loop at three fixed moments (in the spirit of
    fastai's callbacks). Each moment does nothing unless the recipe overrides it."""

    def before_fit(self, run: RunState) -> None:
        """Nothing has been computed from the model yet: a change here reaches the cached activations."""

    def before_training(self, run: RunState) -> None:
        """The inputs are ready (`run.xs`, cached where they can be); the first epoch comes next."""

    def before_epoch(self, run: RunState, epoch: int) -> None:
        """`epoch` (1-based) is about to train."""


@dataclass
class RunState:
    """Everything one run's loop reads and writes."""

    prep: Prepared
    stepper: Stepper
    result: RunResult
    select: Selection
    emit: Callable[[Event], None]
    cancel: CancelToken
    epochs: int
    steps_per_epoch: int
    hooks: list[RecipeHook] = field(default_factory=list)  # the recipe's, in the order they act
    start: float = field(default_factory=time.perf_counter)  # elapsed times and wall_s count from here
    xs: dict = field(default_factory=dict)  # "train", "val": raw inputs, or activations at the freeze boundary
    shared: RunActivations | None = None  # the shared on-disk activation cache, where the run uses it
    trainable_blocks: list[str] | None = None  # set where a recipe changes them by epoch: kept in the history
    epochs_done: int = 0  # the last epoch trained to its end (the curve's last point can be earlier)
    extras: dict = field(default_factory=dict)  # summary fields a loop or a recipe adds (the head's L2, LP-FT's probe)

    @property
    def cached_boundary(self) -> str | None:
        """Where the run caches activations ("pooled features", "after stage4"); None: every step runs it all."""
        return self.prep.plan.cache_boundary if self.stepper.cached else None

    def record(self, row: EpochMetrics) -> None:
        """One point of the curve: kept in the result's history and sent to every callback."""
        self.result.history.append(row.row())
        self.emit(row)

    def before_fit(self) -> None:
        for hook in self.hooks:
            hook.before_fit(self)

    def before_training(self) -> None:
        for hook in self.hooks:
            hook.before_training(self)

    def before_epoch(self, epoch: int) -> None:
        for hook in self.hooks:
            hook.before_epoch(self, epoch)
