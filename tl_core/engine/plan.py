"""What a run will train, decided once, before any model exists.

"Which blocks are frozen and what trains for this mode and depth?" used to be answered in seven places from
two sources, and two answers disagreed (MobileNetV3's pretrained block `fc` was drawn as the new head because
of its name). Now one model-free function answers it from the settings and the backbone's description; the
Model page, the block drawing, the sentences, the Train page and `training.prepare` all read the answer, and
`prepare` checks that the model it builds agrees.

The new head is always its own entry, after every backbone block: a linear layer from the backbone's pooled
features to the classes. It is never recognised by a block's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tl_core.config import Mode

HEAD_NAME = "new head"


@dataclass(frozen=True)
class BlockPlan:
    name: str
    params: int
    frozen: bool


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

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

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
        Text encoders are not block-sequential, so only their pooled features can be cached."""
        if self.depth == 0 or self.mode is Mode.SCRATCH:
            return None
        if self.head_only:
            return "pooled features"
        if self.family == "text":
            return None
        return f"after {self.blocks[self.depth - 1].name}"

    def sentence(self) -> str:
        """One line: "Blocks stem…stage2 frozen, stage3…head_conv and the new head train." """
        frozen, train = self.frozen_blocks, self.trainable_blocks
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


def resolve_depth(mode: Mode | str, freeze_depth: int | None, n_blocks: int) -> int:
    """Frozen: every block; from scratch: none; fine-tune: the first `freeze_depth` (clamped by `plan_run`)."""
    mode = Mode(mode)
    if mode is Mode.FROZEN:
        return n_blocks
    if mode is Mode.SCRATCH:
        return 0
    return int(freeze_depth or 0)


def plan_run(mode: Mode | str, freeze_depth: int | None, info: Mapping[str, Any], n_classes: int, *,
             image_size: int | None = None, max_length: int | None = None) -> RunPlan:
    """The plan from the settings and `backbones.describe()`: no weights are read, no model is built."""
    mode = Mode(mode)
    names, counts = list(info["blocks"]), [int(c) for c in info["block_params"]]
    n_blocks = len(names)
    depth = resolve_depth(mode, freeze_depth, n_blocks)
    problems = []
    if not 0 <= depth <= n_blocks:
        problems.append(f"freeze-depth {depth} is out of range for {info['name']}: use 0..{n_blocks}")
        depth = max(0, min(depth, n_blocks))
    if n_classes < 2:
        problems.append(f"a classifier needs at least 2 classes, the data has {n_classes}")
    blocks = tuple(BlockPlan(n, c, i < depth) for i, (n, c) in enumerate(zip(names, counts)))
    head = int(info["feature_dim"]) * n_classes + n_classes
    return RunPlan(info["name"], info["family"], mode, depth, blocks, head,
                   image_size=image_size if info["family"] == "vision" else None,
                   max_length=max_length if info["family"] == "text" else None, problems=tuple(problems))
