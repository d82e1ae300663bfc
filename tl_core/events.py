"""The one typed event stream a run emits, and the token that cancels it.

The UI, the CLI and the tests all consume the same events, so what a student
sees in the browser is exactly what a test asserts. Events are plain frozen
dataclasses: cheap to pass between threads and easy to serialise (`asdict`).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal, Union

from tl_core.records import RunSummary


class Cancelled(Exception):
    """Raised inside the training loop when the cancel token is set (fastai's CancelFitException)."""


class CancelToken:
    """A thread-safe flag the loop checks once per batch (a multiprocessing Event when the run is in a worker
    process and the server cancels it)."""

    def __init__(self, flag=None) -> None:
        self._event = flag if flag is not None else threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    config: dict
    device: str
    classes: list[str]
    n_train: int
    n_val: int
    epochs: int
    steps_per_epoch: int
    trainable_params: int
    total_params: int
    cached_boundary: str | None  # where activations are cached, None when every epoch runs the full model
    n_test: int = 0  # held-out items the run reports on (the epoch is chosen on the n_val others)
    plan: dict | None = None  # the run plan (tl_core.engine.plan.RunPlan.to_dict): what trains, how long
    kind: Literal["run_started"] = "run_started"


@dataclass(frozen=True)
class StepProgress:
    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float
    elapsed_s: float
    eta_s: float | None
    kind: Literal["step_progress"] = "step_progress"


@dataclass(frozen=True)
class EpochMetrics:
    """One point of the curve: an epoch's training figures and its validation scores. In a run whose network
    trains, the evaluation runs beside the next epochs, so this arrives while they train (in epoch order)."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float
    trainable_blocks: list[str] | None = None  # gradual unfreezing: the blocks that trained this epoch (and the head)
    kind: Literal["epoch_metrics"] = "epoch_metrics"

    def row(self) -> dict:
        """The run history's row for this epoch (`trainable_blocks` only where a recipe changes them by epoch)."""
        return {k: v for k, v in asdict(self).items() if k != "kind" and not (k == "trainable_blocks" and v is None)}


@dataclass(frozen=True)
class Message:
    text: str
    level: Literal["info", "warning", "error"] = "info"
    kind: Literal["message"] = "message"


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: Literal["completed", "cancelled", "failed"]
    summary: RunSummary = field(default_factory=RunSummary)  # tl_core/records.py
    error: str | None = None
    kind: Literal["run_finished"] = "run_finished"


@dataclass(frozen=True)
class ScoreProgress:
    """Ranking backbones (tl_core.engine.ranking): features of one backbone extracted for `done` of `items`."""

    backbone: str
    pretrained: bool
    index: int  # 1-based position among the `total` backbones being scored
    total: int
    done: int
    items: int
    elapsed_s: float  # since the ranking started
    kind: Literal["score_progress"] = "score_progress"


@dataclass(frozen=True)
class BackboneScored:
    """One backbone's transferability scores, as soon as they are known (higher ranks higher)."""

    name: str
    pretrained: bool
    logme: float
    hscore: float
    seconds: float
    index: int
    total: int
    kind: Literal["backbone_scored"] = "backbone_scored"


Event = Union[RunStarted, StepProgress, EpochMetrics, Message, RunFinished, ScoreProgress, BackboneScored]
EventHandler = Callable[[Event], Any]


def event_to_dict(event: Event) -> dict:
    return asdict(event)


def emitter(callbacks) -> Callable[[Event], None]:
    """Every event to every callback. A callback that raises is reported as a Message to the others and
    removed: a broken chart or a full disk must not take the run down, and RunFinished still reaches the rest."""
    live = list(callbacks)

    def emit(event: Event) -> None:
        for cb in list(live):
            if cb not in live:
                continue
            try:
                cb(event)
            except Exception as err:  # noqa: BLE001 - any callback bug; the run goes on without that callback
                live.remove(cb)
                name = getattr(cb, "__qualname__", type(cb).__name__)
                note = Message(f"A progress callback ({name}) failed and was removed: {type(err).__name__}: {err}",
                               level="warning")
                for other in list(live):
                    try:
                        other(note)
                    except Exception:  # noqa: BLE001 - removed on the next event
                        pass
    return emit
