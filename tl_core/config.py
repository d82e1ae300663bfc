"""One serialisable description of a run: what the CLI parses, the app fills in and the store saves."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields

from tl_core.errors import ConfigError


class Mode(str, enum.Enum):
    """The three ways to train, with the words and colour every page, chart and sentence uses for each.

    A `str` enum: `Mode.FROZEN == "frozen"`, so stored runs and URLs keep their plain strings."""

    FROZEN = "frozen"
    FINETUNE = "finetune"
    SCRATCH = "scratch"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return _MODE_TEXT[self][0]

    @property
    def help(self) -> str:
        return _MODE_TEXT[self][1]

    @property
    def color(self) -> str:
        return _MODE_TEXT[self][2]


_MODE_TEXT = {  # label, one-line help, colour (Okabe-Ito: readable by colour-blind students)
    Mode.FROZEN: ("Feature extraction (frozen)",
                  "Feature extraction: the pretrained backbone stays fixed, only a new head learns.", "#0072B2"),
    Mode.FINETUNE: ("Fine-tune",
                    "Fine-tune: start from pretrained weights and keep training every block past the freeze depth.",
                    "#E69F00"),
    Mode.SCRATCH: ("From scratch",
                   "From scratch: the same architecture with random weights, everything trains (the baseline).",
                   "#CC79A7"),
}
MODES = tuple(m.value for m in Mode)
MODE_HELP = {m.value: m.help for m in Mode}

#: name -> one line for the app and the CLI help.
SHIFTS: dict[str, str] = {
    "blur": "Gaussian blur (sigma = 1.5% of the image side): detail is lost, shapes stay",
    "noise": "Gaussian pixel noise (std 40 of 255)",
    "rotate": "rotated by 30 degrees",
    "invert": "colours inverted (255 - pixel)",
    "grayscale": "colour removed (no shift for data that is grey already)",
    "typos": "text: one character in four words swapped with its neighbour",
}
IMAGE_SHIFTS = ("blur", "noise", "rotate", "invert", "grayscale")
DEFAULT_TEXT_SHIFT = "typos"

# Learning rates that converge with AdamW + cosine decay on small data (measured, see docs/results.md). A network trained
# from random weights needs a larger rate and more steps than one that starts pretrained (Kornblith et al. 2019
# tune the scratch baseline separately): see BUDGETS.
DEFAULT_LR = {"frozen": 3e-3, "finetune": 1e-3, "scratch": 1e-2}
#: Transformers trained from random weights diverge at the convolutional networks' 1e-2.
SCRATCH_LR_TEXT = 1e-3
BACKBONE_LR_FACTOR = 0.1  # fine-tuned pretrained blocks move 10x slower than the new head (discriminative rates)

#: How long a run trains. "fixed": exactly --epochs. "converge": at least CONVERGE_MIN_STEPS optimizer steps
#: (more epochs when the data is small, at most CONVERGE_MAX_EPOCHS); like every run it keeps the weights of the
#: epoch with the best validation accuracy. Fine-tuning and from-scratch runs get "converge" by default: forty
#: steps leave a network far from what it can reach, and a gap read off an arm that stopped early is not a gap.
BUDGETS = ("fixed", "converge")
BUDGET_HELP = {
    "fixed": "same short budget: exactly the epochs set, for every arm",
    "converge": "trained to convergence: at least {steps} optimizer steps, the best epoch on validation kept",
}
CONVERGE_MIN_STEPS = 400
CONVERGE_MAX_EPOCHS = 300

#: The classic fine-tuning recipes, offered as presets: name -> the mode each implies. Their papers, what each
#: trains and the numbers they set are in tl_core.engine.recipes; the run plan (tl_core.engine.plan) applies them.
RECIPES: dict[str, str] = {
    "lp-ft": "finetune",  # Kumar et al. 2022: the head first on frozen features, then fine-tune (= lp_ft=True)
    "gradual": "finetune",  # ULMFiT (Howard & Ruder 2018): one more block each epoch, slanted triangular rate
    "discriminative": "finetune",  # ULMFiT: each lower block at the rate of the one above / 2.6
    "surgical": "finetune",  # Lee et al. 2023: tune one chosen block only
    "adabn": "frozen",  # Li et al. 2016: BatchNorm statistics re-estimated on the target data, backbone frozen
}


def default_lr(mode: str, family: str = "vision") -> float:
    """The learning rate a mode gets unless one is set (measured on the built-in sets, see docs/results.md)."""
    return SCRATCH_LR_TEXT if mode == "scratch" and family == "text" else DEFAULT_LR[mode]


@dataclass
class TrainConfig:
    data: str = "builtin:animals"
    backbone: str = "mobilenet_v2"
    mode: str = "frozen"
    freeze_depth: int | None = None  # finetune only: the first K blocks stay frozen (0 = everything trains)
    lp_ft: bool = False  # finetune only: train the new head on frozen features first (LP-FT, Kumar et al. 2022)
    recipe: str | None = None  # one of RECIPES, or None: the mode and freeze depth alone decide what trains
    surgical_block: int | None = None  # recipe "surgical": the index of the one block that trains
    epochs: int = 10
    lr: float | None = None  # None -> default_lr(mode, family)
    batch_size: int = 32
    image_size: int | None = None  # None -> 64 px for the small built-in images, else the backbone's native size
    labels_per_class: int | None = None  # subsample training data only; validation stays fixed
    val_per_class: int = 20  # picks the epoch (and the head's regularisation): never reported as the result
    test_per_class: int = 50  # held out: the accuracy a run reports, measured once at the selected epoch
    budget: str | None = None  # None -> "converge" when the network trains, "fixed" for a frozen head (see BUDGETS)
    ood_shift: str = "blur"  # the shifted copy of the test split (tl_core.inputs.shifts): out-of-distribution accuracy
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    #: CPU threads inside the run. Part of its numerics: a reduction split over two threads rounds differently from
    #: one over a single thread, so the same config and seed give the same numbers only at the same count. Fixed
    #: for the whole run and stored with it; a server shares its cores by running runs side by side, one thread
    #: each, never by changing a running run's threads.
    threads: int = 1
    pretrained: bool = True  # False trains a pretrained mode from random weights (architecture exploration)
    max_length: int = 64  # text: tokens per example
    text_column: str | None = None
    label_column: str | None = None

    def __post_init__(self) -> None:
        if self.recipe in ("", "none"):
            self.recipe = None
        if self.recipe == "lp-ft":  # the preset and the flag are one setting: stored runs say both
            self.lp_ft = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def effective_lr(self, family: str = "vision") -> float:
        return self.lr if self.lr is not None else default_lr(self.mode, family)

    @property
    def effective_budget(self) -> str:
        """Every arm whose network trains (fine-tuning and from scratch) trains to convergence unless "fixed" is
        asked for; a frozen head is fitted to convergence by its own solver, so its epochs only slice the curve."""
        return self.budget or ("fixed" if self.mode == "frozen" else "converge")

    def validate(self) -> None:
        """Cheap checks that need no data or weights; the rest is checked where the facts are known."""
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode '{self.mode}': use one of {', '.join(MODES)}")
        if self.budget is not None and self.budget not in BUDGETS:
            raise ConfigError(f"unknown budget '{self.budget}': use one of {', '.join(BUDGETS)}")
        if self.ood_shift not in SHIFTS:
            raise ConfigError(f"unknown shift '{self.ood_shift}': use one of {', '.join(SHIFTS)}")
        for name in ("epochs", "batch_size", "val_per_class", "test_per_class", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.labels_per_class is not None and self.labels_per_class < 1:
            raise ConfigError("--labels-per-class must be at least 1")
        if self.lr is not None and not 0 < self.lr < 10:
            raise ConfigError(f"--lr {self.lr} is out of range: try 1e-3")
        self._validate_recipe()
        if self.lp_ft and self.mode != "finetune":
            raise ConfigError(f"--lp-ft only applies to --mode finetune (got --mode {self.mode})")
        if self.freeze_depth is not None and self.freeze_depth < 0:
            raise ConfigError("--freeze-depth must be 0 or more")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise ConfigError("--image-size must be between 8 and 1024")

    def _validate_recipe(self) -> None:
        """A recipe implies a mode; surgical fine-tuning needs its block (its range is checked by the run plan,
        which knows the backbone's blocks)."""
        if self.recipe is not None:
            if self.recipe not in RECIPES:
                raise ConfigError(f"unknown recipe '{self.recipe}': use one of {', '.join(RECIPES)}")
            want = RECIPES[self.recipe]
            if self.mode != want:
                does = "fine-tunes" if want == "finetune" else "keeps the backbone frozen"
                raise ConfigError(f"--recipe {self.recipe} {does}: use --mode {want} with it, or leave --mode out "
                                  f"(got --mode {self.mode})")
        if self.recipe == "surgical":
            if self.surgical_block is None:
                raise ConfigError("--recipe surgical tunes one block: choose it with --surgical-block K "
                                  "(0 = the first block; `python -m tl_core backbones` lists them)")
            if self.surgical_block < 0:
                raise ConfigError(f"--surgical-block must be 0 or more (got {self.surgical_block})")
            if self.freeze_depth not in (None, 0):
                raise ConfigError("--freeze-depth does not apply to --recipe surgical: it tunes the --surgical-block "
                                  "alone and freezes every other block")
        elif self.surgical_block is not None:
            raise ConfigError("--surgical-block only applies to --recipe surgical")
