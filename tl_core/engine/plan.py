"""What a run will train, decided once, before any model exists.

"Which blocks are frozen and what trains for this mode and depth?" has one answer: a model-free function of the
settings and the backbone's description. The Model page, the block drawing, the sentences, the Train page and
`preparation.prepare` all read it, and `prepare` checks that the model it builds agrees. Answers computed in
several places drift apart (a pretrained block named `fc`, MobileNetV3's, would pass for the new head).

The new head is always its own entry, after every backbone block: a linear layer from the backbone's pooled
features to the classes. It is never recognised by a block's name.

The plan is made once per run (`planning.plan_for`, from the settings and the data), shown before Start, sent with
the run to its worker, read by training alone, and kept with the run record (`to_dict`/`from_dict`): the pages, the
charts and the CLI then label a run from what it trained, not from settings that say it less exactly.

A recipe (tl_core.engine.recipes) refines the answer: gradual unfreezing says from which epoch each block trains,
discriminative rates give each block its own learning rate, surgical fine-tuning trains one block between frozen
ones, and AdaBN re-estimates the frozen blocks' BatchNorm statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tl_core.config import BACKBONE_LR_FACTOR, CONVERGE_MAX_EPOCHS, CONVERGE_MIN_STEPS, Mode
from tl_core.records import config_of, summary_of
from tl_core.engine import recipes
from tl_core.models.backbone_info import BackboneInfo

HEAD_NAME = "new head"


@dataclass(frozen=True)
class BlockPlan:
    name: str
    params: int
    frozen: bool  # never trains in this run
    unfreeze_epoch: int = 1  # the first epoch (1-based) in which it trains: later than 1 under gradual unfreezing
    lr_factor: float = 1.0  # its learning rate / the new head's


@dataclass(frozen=True)
class RunPlan:
    """The answer for one (settings, backbone, data) triple. `problems` are what would stop the run."""

    backbone: str
    family: str
    mode: Mode
    depth: int  # blocks [0, depth) are frozen
    blocks: tuple[BlockPlan, ...]
    head_params: int
    image_size: int | None = None
    max_length: int | None = None
    problems: tuple[str, ...] = field(default=())
    recipe: str | None = None  # a name in tl_core.config.RECIPES
    block_cache: bool = True  # activations inside the backbone can be cached (False: a text encoder that runs whole)
    # How long it trains (set by `with_budget` once the training items are known; None before)
    budget: str | None = None  # "fixed" or "converge" (tl_core.config.BUDGETS)
    fits_head: bool = False  # the head alone is fitted on cached pooled features (a convex fit, one step an epoch)
    n_train: int | None = None
    epochs: int | None = None  # planned: --epochs, or what the converge budget needs
    steps_per_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: sent to a worker process, kept with the run record."""
        d = asdict(self)
        d.update(mode=self.mode.value, blocks=[asdict(b) for b in self.blocks], problems=list(self.problems))
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunPlan:
        d = dict(data)
        d["mode"] = Mode(d["mode"])
        d["blocks"] = tuple(BlockPlan(**b) for b in d["blocks"])
        d["problems"] = tuple(d.get("problems") or ())
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_budget(self, budget: str, epochs: int, batch_size: int, n_train: int, *, augment: bool = False) -> RunPlan:
        """The plan with its length: a head fitted on cached pooled features takes --epochs slices of one step; a
        network that trains takes --epochs, or under the "converge" budget enough epochs for CONVERGE_MIN_STEPS
        optimizer steps (a from-scratch run on a few labels trains far longer than the --epochs it was given)."""
        fits_head = self.head_only and not augment  # augmented images cannot be cached, so the head trains by SGD
        steps = 1 if fits_head else math.ceil(n_train / batch_size)
        planned = epochs if fits_head else planned_epochs(budget, epochs, steps)
        return replace(self, budget=budget, fits_head=fits_head, n_train=n_train, epochs=planned,
                       steps_per_epoch=steps)

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def frozen_indices(self) -> list[int]:
        """The blocks that never train: a prefix [0, depth), plus the blocks after the one surgical fine-tuning tunes."""
        return [i for i, b in enumerate(self.blocks) if b.frozen]

    @property
    def gradual(self) -> bool:
        return self.recipe == "gradual"

    @property
    def adapts_batchnorm(self) -> bool:
        """AdaBN: the frozen blocks' BatchNorm statistics are re-estimated on the training items before training."""
        return self.recipe == "adabn"

    def depth_at(self, epoch: int) -> int:
        """The freeze depth in `epoch` (1-based): `depth` throughout, except under gradual unfreezing."""
        return recipes.depth_at(epoch, self.n_blocks, self.depth) if self.gradual else self.depth

    def trainable_at(self, epoch: int) -> list[str]:
        """The blocks that train in `epoch` (1-based), bottom first; the new head always trains."""
        return [b.name for b in self.blocks if not b.frozen and b.unfreeze_epoch <= epoch]

    @property
    def frozen_blocks(self) -> list[str]:
        return [b.name for b in self.blocks if b.frozen]

    @property
    def trainable_blocks(self) -> list[str]:
        return [b.name for b in self.blocks if not b.frozen]

    @property
    def total_params(self) -> int:
        return sum(b.params for b in self.blocks) + self.head_params

    @property
    def trainable_params(self) -> int:
        return sum(b.params for b in self.blocks if not b.frozen) + self.head_params

    @property
    def head_only(self) -> bool:
        """Only the new head trains: the pooled features can be computed once."""
        return self.depth == self.n_blocks

    @property
    def cache_boundary(self) -> str | None:
        """Where the frozen prefix's activations can be cached (without augmentation); None: nothing is frozen.
        Text encoders cache the hidden states entering the first trainable layer, with their attention mask; one
        without a cut (XLNet, see tl_core.models.text_arch) caches only pooled features."""
        if self.depth == 0 or self.mode is Mode.SCRATCH:
            return None
        if self.head_only:
            return "pooled features"
        if not self.block_cache:
            return None
        return f"after {self.blocks[self.depth - 1].name}"

    def sentence(self) -> str:
        """One line: "Blocks stem…stage2 frozen, stage3…head_conv and the new head train." """
        frozen, train = self.frozen_blocks, self.trainable_blocks
        if self.recipe in _RECIPE_SENTENCES and not self.problems:
            return _RECIPE_SENTENCES[self.recipe](self)
        if not frozen:
            start = "from random initialisation" if self.mode is Mode.SCRATCH else "from the pretrained weights"
            return f"No blocks frozen: {_span(train + [HEAD_NAME])} all train {start}."
        noun = "Block" if len(frozen) == 1 else "Blocks"
        if not train:
            return f"{noun} {_span(frozen)} frozen; only the {HEAD_NAME} trains."
        return f"{noun} {_span(frozen)} frozen, {_span(train)} and the {HEAD_NAME} train."


def _span(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{names[0]}…{names[-1]}"


def _gradual_sentence(plan: RunPlan) -> str:
    train = plan.trainable_blocks
    last = max(b.unfreeze_epoch for b in plan.blocks if not b.frozen)
    floor = f" ({_span(plan.frozen_blocks)} stay frozen)" if plan.frozen_blocks else ""
    return (f"Epoch 1 trains only the {HEAD_NAME}; each later epoch unfreezes one more block, from {train[-1]} "
            f"down to {train[0]}{floor}: all {len(train)} train from epoch {last}.")


def _discriminative_sentence(plan: RunPlan) -> str:
    train = [b for b in plan.blocks if not b.frozen]
    divisor, k = recipes.DISCRIMINATIVE_DIVISOR, plan.n_blocks - plan.depth
    frozen = f"Blocks {_span(plan.frozen_blocks)} frozen; " if plan.frozen_blocks else ""
    return (f"{frozen}{_span([b.name for b in train])} and the {HEAD_NAME} train, each block at the rate of the "
            f"one above / {divisor:g}: from lr/{divisor:g} for {train[-1].name} to lr/{divisor:g}^{k} "
            f"(lr × {train[0].lr_factor:.2g}) for {train[0].name}.")


def _surgical_sentence(plan: RunPlan) -> str:
    (tuned,) = plan.trainable_blocks
    return f"Only {tuned} and the {HEAD_NAME} train; every other block stays frozen, the ones after {tuned} too."


def _adabn_sentence(plan: RunPlan) -> str:
    return (f"Blocks {_span(plan.frozen_blocks)} frozen, their BatchNorm statistics re-estimated on your training "
            f"items (AdaBN); only the {HEAD_NAME} trains.")


_RECIPE_SENTENCES = {"gradual": _gradual_sentence, "discriminative": _discriminative_sentence,
                     "surgical": _surgical_sentence, "adabn": _adabn_sentence}


def planned_epochs(budget: str, epochs: int, steps_per_epoch: int) -> int:
    """`epochs`, or for the "converge" budget enough epochs for CONVERGE_MIN_STEPS optimizer steps."""
    if budget == "fixed":
        return epochs
    return max(epochs, min(CONVERGE_MAX_EPOCHS, math.ceil(CONVERGE_MIN_STEPS / steps_per_epoch)))


def default_depth(n_blocks: int) -> int:
    """The freeze depth of a fine-tune that names none: half the blocks (the early, generic ones stay frozen)."""
    return max(0, min(n_blocks, round(n_blocks / 2)))


def depth_label(plan: RunPlan | Mapping[str, Any] | None) -> str:
    """How a run's depth is written beside its mode: "k=5", the recipe's words where the depth is not the story
    ("tunes block3 only"), "" for a frozen or from-scratch run."""
    if plan is None:
        return ""
    if not isinstance(plan, RunPlan):
        plan = RunPlan.from_dict(plan)
    if plan.mode is not Mode.FINETUNE:
        return ""
    if plan.recipe == "surgical" and len(plan.trainable_blocks) == 1:
        return f"tunes {plan.trainable_blocks[0]} only"
    return f"k={plan.depth}"


def resolve_depth(mode: Mode | str, freeze_depth: int | None, n_blocks: int) -> int:
    """Frozen: every block; from scratch: none; fine-tune: the first `freeze_depth` (clamped by `plan_run`), or
    `default_depth` when none is chosen."""
    mode = Mode(mode)
    if mode is Mode.FROZEN:
        return n_blocks
    if mode is Mode.SCRATCH:
        return 0
    return default_depth(n_blocks) if freeze_depth is None else int(freeze_depth)


def plan_run(mode: Mode | str, freeze_depth: int | None, info: BackboneInfo | Mapping[str, Any], n_classes: int, *,
             image_size: int | None = None, max_length: int | None = None, recipe: str | None = None,
             surgical_block: int | None = None, pretrained: bool = True) -> RunPlan:
    """The plan from the settings and `backbones.info()` (or its dict, `describe()`): no weights are read, no
    model is built."""
    mode, info = Mode(mode), BackboneInfo.from_dict(info)
    names, counts = list(info.blocks), list(info.block_params)
    n_blocks = len(names)
    depth = resolve_depth(mode, freeze_depth, n_blocks)
    problems = []
    if not 0 <= depth <= n_blocks:
        problems.append(f"freeze-depth {depth} is out of range for {info.name}: use 0..{n_blocks}")
        depth = max(0, min(depth, n_blocks))
    if n_classes < 2:
        problems.append(f"a classifier needs at least 2 classes, the data has {n_classes}")
    frozen = [i < depth for i in range(n_blocks)]
    unfreeze = [1] * n_blocks
    factor = 1.0 if mode is Mode.SCRATCH or not pretrained else BACKBONE_LR_FACTOR
    factors = [factor] * n_blocks
    if recipe == "surgical":
        if surgical_block is None or not 0 <= surgical_block < n_blocks:
            problems.append(f"surgical block {surgical_block} is out of range for {info.name}: use 0..{n_blocks - 1} "
                            f"({', '.join(f'{i} {n}' for i, n in enumerate(names))})")
        else:
            depth = surgical_block  # the frozen prefix; the blocks after the tuned one are frozen too
            frozen = [i != surgical_block for i in range(n_blocks)]
    elif recipe == "gradual":
        if depth >= n_blocks:
            problems.append(f"gradual unfreezing needs a freeze depth below {n_blocks}: blocks at or above it unfreeze")
        unfreeze = [recipes.unfreeze_epoch(i, n_blocks) for i in range(n_blocks)]
    elif recipe == "discriminative":
        if depth >= n_blocks:
            problems.append(f"discriminative learning rates need a freeze depth below {n_blocks}: some block must train")
        factors = [recipes.discriminative_factor(i, n_blocks) for i in range(n_blocks)]
    elif recipe == "adabn" and not info.batchnorm_layers:
        problems.append(f"AdaBN re-estimates BatchNorm statistics, and {info.name} has no BatchNorm layers "
                        "(it normalises with LayerNorm): pick a convolutional backbone such as mobilenet_v2")
    blocks = tuple(BlockPlan(n, c, f, u, r) for n, c, f, u, r in zip(names, counts, frozen, unfreeze, factors))
    head = int(info.feature_dim) * n_classes + n_classes
    return RunPlan(info.name, info.family, mode, depth, blocks, head,
                   image_size=image_size if info.family == "vision" else None,
                   max_length=max_length if info.family == "text" else None, problems=tuple(problems),
                   recipe=recipe, block_cache=info.block_cache)


# ---- a stored run's plan -------------------------------------------------------------------------
def plan_of(run: Mapping[str, Any]):
    """A run record's plan (tl_core.engine.plan.RunPlan), None for a run stored before runs kept their plan."""
    plan = run.get("plan")
    return None if plan is None else plan if isinstance(plan, RunPlan) else RunPlan.from_dict(plan)


def depth_label_of(run: Mapping[str, Any]) -> str:
    """The run's depth label from its plan (tl_core.engine.plan.depth_label); a run stored without a plan is
    labelled from its config: "k=N" for a plain fine-tune, "" otherwise."""
    plan = plan_of(run)
    if plan is not None:
        return depth_label(plan)
    cfg = config_of(run)
    depth = summary_of(run).get("freeze_depth", cfg.get("freeze_depth"))
    if cfg.get("mode") != "finetune" or depth is None or cfg.get("recipe") == "surgical":
        return ""
    return f"k={depth}"
