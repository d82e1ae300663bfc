"""One serialisable description of a run: what the CLI parses, the app fills in and the store saves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MODES = ("frozen", "finetune", "scratch")
MODE_HELP = {
    "frozen": "Feature extraction: the pretrained backbone stays fixed, only a new head learns.",
    "finetune": "Fine-tune: start from pretrained weights and keep training every block past the freeze depth.",
    "scratch": "From scratch: the same architecture with random weights, everything trains (the baseline).",
}
# Learning rates that converge with AdamW + cosine decay on small data (measured, see README).
DEFAULT_LR = {"frozen": 3e-3, "finetune": 1e-3, "scratch": 1e-3}
BACKBONE_LR_FACTOR = 0.1  # fine-tuned pretrained blocks move 10x slower than the new head (discriminative rates)


@dataclass
class TrainConfig:
    data: str = "builtin:animals"
    backbone: str = "mobilenet_v2"
    mode: str = "frozen"
    freeze_depth: int | None = None  # finetune only: the first K blocks stay frozen (0 = everything trains)
    lp_ft: bool = False  # finetune only: train the new head on frozen features first (LP-FT, Kumar et al. 2022)
    epochs: int = 10
    lr: float | None = None  # None -> DEFAULT_LR[mode]
    batch_size: int = 32
    image_size: int | None = None  # None -> 64 px for the small built-in images, else the backbone's native size
    labels_per_class: int | None = None  # subsample training data only; validation stays fixed
    val_per_class: int = 20
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    pretrained: bool = True  # False trains a pretrained mode from random weights (architecture exploration)
    max_length: int = 64  # text: tokens per example
    text_column: str | None = None
    label_column: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def effective_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    def validate(self) -> None:
        """Cheap checks that need no data or weights; the rest is checked where the facts are known."""
        if self.mode not in MODES:
            raise ValueError(f"unknown mode '{self.mode}': use one of {', '.join(MODES)}")
        for name in ("epochs", "batch_size", "val_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.labels_per_class is not None and self.labels_per_class < 1:
            raise ValueError("--labels-per-class must be at least 1")
        if self.lr is not None and not 0 < self.lr < 10:
            raise ValueError(f"--lr {self.lr} is out of range: try 1e-3")
        if self.lp_ft and self.mode != "finetune":
            raise ValueError(f"--lp-ft only applies to --mode finetune (got --mode {self.mode})")
        if self.freeze_depth is not None and self.freeze_depth < 0:
            raise ValueError("--freeze-depth must be 0 or more")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise ValueError("--image-size must be between 8 and 1024")
