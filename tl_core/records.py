"""What a finished run reports, declared once.

`fit` returns it, `RunFinished` carries it, the store keeps it as JSON and gives it back typed, so the Train,
Compare and Home pages, the CLI's JSON and the benches all read the same fields. Reading by name
(`summary["test_acc"]`, `summary.get("ood_acc")`) still works for older call sites, but only for declared
fields: a misspelt key raises instead of quietly reading None, which a plain dict would do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from collections.abc import Mapping
from typing import Any


@dataclass
class RunSummary:
    # what the run measured: the epoch picked on validation, accuracy reported on test
    best_val_acc: float | None = None
    final_val_acc: float | None = None
    selected_epoch: int | None = None
    test_acc: float | None = None
    ood_acc: float | None = None
    ood_shift: str | None = None
    health: list[dict] | None = None  # engine.health findings: [] when healthy, None when never checked
    classes: list[str] = field(default_factory=list)
    confusion_matrix: list[list[int]] = field(default_factory=list)  # rows: true class, on the test split
    per_class: list[dict] = field(default_factory=list)
    # what was trained, on what
    trainable_params: int | None = None
    total_params: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    device: str | None = None
    threads: int | None = None  # CPU threads the run trained on (part of its numerics, see TrainConfig.threads)
    deterministic: bool | None = None  # False on CUDA: the same config may differ in the last digits there
    cached_boundary: str | None = None
    activation_cache: str | None = None  # the shared on-disk cache: "hit", "miss" or "off"; None: nothing cached
    freeze_depth: int | None = None
    n_blocks: int | None = None
    image_size: int | None = None
    budget: str | None = None
    head_solver: str | None = None  # "lbfgs" (frozen head fitted to convergence) or "adamw"
    lr: float | None = None
    head_c: float | None = None  # the L2 strength chosen by cross-validation for a fitted head
    head_cv_acc: float | None = None
    lp_ft_probe_val_acc: float | None = None
    block_similarity: dict | None = None  # per-block CKA between pretrained and fine-tuned features
    # how long, how far
    wall_s: float | None = None
    epochs_run: int | None = None
    evaluations: int | None = None
    epochs_done: int | None = None  # a cancelled run: the last epoch it trained to the end (its curve may end earlier)

    @classmethod
    def from_dict(cls, data: dict | RunSummary | None) -> RunSummary:
        """From stored JSON; keys this version does not know (an older or newer row) are dropped."""
        if isinstance(data, RunSummary):
            return data
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def healthy(self) -> bool:
        """No finding that makes the run no result (a "cannot learn" finding is a result: tl_core.engine.health)."""
        return not any(not f.get("result") for f in self.health or ())

    # ---- read by name, declared fields only ----------------------------------------
    def _check(self, key: str) -> None:
        if key not in _FIELDS:
            raise KeyError(f"RunSummary has no field {key!r}")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key)
        setattr(self, key, value)

    def __contains__(self, key: str) -> bool:
        return key in _FIELDS and getattr(self, key) not in (None, [], {})

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        value = getattr(self, key)
        return default if value is None else value


_FIELDS = frozenset(f.name for f in fields(RunSummary))


def config_of(run: Mapping[str, Any]) -> Mapping[str, Any]:
    """A run record's config (the store's, a live job's or a test's), {} when it has none yet."""
    return run.get("config") or {}


def summary_of(run: Mapping[str, Any]) -> RunSummary:
    """A run record's summary, typed, also when the record was built by hand with a plain dict."""
    return RunSummary.from_dict(run.get("summary"))


class JobState(str, Enum):
    """Where a run is, for the job queue and the run store (which keeps the last three and `running`)."""

    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self in (JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED)

    @property
    def active(self) -> bool:
        return self in (JobState.PREPARING, JobState.RUNNING)

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def icon(self) -> str:
        return _ICONS[self]

    def __str__(self) -> str:  # f-strings and st.write show "completed", not "JobState.COMPLETED"
        return self.value


_ICONS = {JobState.QUEUED: ":material/schedule:", JobState.PREPARING: ":material/hourglass_top:",
          JobState.RUNNING: ":material/directions_run:", JobState.COMPLETED: ":material/check_circle:",
          JobState.CANCELLED: ":material/cancel:", JobState.FAILED: ":material/error:"}
