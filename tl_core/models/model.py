"""A pretrained network cut into named blocks, plus a new classification head.

The freeze-depth slider, the activation cache and the trainable-parameter
counts all speak in blocks, so one class owns the cut. The original network is
kept intact as `self.net` (its state_dict keys are the library's own), with the
new head placed in the original classifier's slot: an exported state_dict loads
straight into `torchvision.models.get_model(name, num_classes=N)`.

Vision models run as a sequence: blocks[0..n) -> neck -> head, which is what
lets the trainer cache activations at the freeze boundary and train only the
suffix. Text models cut between two encoder layers (tl_core.models.text_arch):
the cached activation is the hidden states entering the first trainable layer
together with their attention mask; an architecture without a cut (XLNet) runs
its encoder whole and caches only when every block is frozen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from tl_core.models.text_arch import TextCut


@dataclass
class Block:
    name: str
    prefixes: list[str]  # parameter/module names inside `net` that belong to this block
    forward: nn.Module | None = None  # vision only: runs this block on the previous block's output


@dataclass
class Preprocess:
    """Everything needed to turn raw input into model input, saved with each run as JSON."""

    family: str  # vision | text
    image_size: int | None = None
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    resize: str = "shorter side to image_size (antialiased bilinear), centre crop"
    max_length: int | None = None

    def to_dict(self) -> dict:
        if self.family == "text":
            return {"family": "text", "max_length": self.max_length}
        return {"family": "vision", "image_size": self.image_size, "mean": self.mean, "std": self.std, "resize": self.resize}


class TransferModel(nn.Module):
    def __init__(self, *, name: str, family: str, net: nn.Module, blocks: list[Block], neck: nn.Module | None,
                 head_path: str | None, feature_dim: int, preprocess: Preprocess, tokenizer=None,
                 text_cut: TextCut | None = None):
        super().__init__()
        self.name, self.family = name, family
        self.net = net
        # Unregistered: the neck reuses modules of `net` (e.g. ViT's final norm), whose weights must be saved once.
        object.__setattr__(self, "neck", neck if neck is not None else nn.Identity())
        if head_path is None:  # text: the head sits beside the encoder
            self.head = nn.Linear(feature_dim, 2)
        self._head_path = head_path
        self._blocks = blocks  # plain list: the forward modules share `net`'s parameters and must not register twice
        self.feature_dim = feature_dim
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.text_cut = text_cut  # text: how to run the encoder from a layer boundary (None: only whole)
        self.freeze_depth = 0
        self._frozen: frozenset[int] = frozenset()
        self.batchnorm_inference = False  # True: every BatchNorm uses its running statistics, even while training
        self._owner = self._assign_parameters()

    # ---- structure -------------------------------------------------------
    @property
    def block_names(self) -> list[str]:
        return [b.name for b in self._blocks]

    @property
    def n_blocks(self) -> int:
        return len(self._blocks)

    @property
    def sequential(self) -> bool:
        return self.family == "vision"

    def caches_at(self, depth: int) -> bool:
        """Can a depth-`depth` fine-tune start from cached activations (`boundary`) and run only `suffix`?"""
        return 0 < depth <= self.n_blocks and (self.sequential or depth == self.n_blocks or self.text_cut is not None)

    def get_head(self) -> nn.Linear:
        return self.net.get_submodule(self._head_path) if self._head_path else self.head

    def set_head(self, n_classes: int, seed: int) -> None:
        """A fresh head; the same seed gives the same initial weights in every mode (controlled comparisons)."""
        old = self.get_head()
        gen = torch.Generator().manual_seed(seed)
        head = nn.Linear(self.feature_dim, n_classes)
        bound = 1.0 / self.feature_dim ** 0.5
        with torch.no_grad():
            head.weight.uniform_(-bound, bound, generator=gen)
            head.bias.uniform_(-bound, bound, generator=gen)
        head = head.to(device=old.weight.device)
        if self._head_path:
            parent_path, _, leaf = self._head_path.rpartition(".")
            parent = self.net.get_submodule(parent_path) if parent_path else self.net
            setattr(parent, leaf, head)
        else:
            self.head = head
        self._owner = self._assign_parameters()

    def head_param_names(self) -> set[str]:
        if self._head_path:
            return {f"net.{self._head_path}.{n}" for n, _ in self.get_head().named_parameters()}
        return {f"head.{n}" for n, _ in self.head.named_parameters()}

    def block_of(self, name: str, head: set[str] | None = None) -> int:
        """The block a parameter or buffer belongs to (-1: the head; leftovers such as necks and final norms join
        the last block). `head`: `head_param_names()` when asking for many names. The activation cache hashes
        each block's tensors by this rule, so a cache key moves exactly when the blocks it covers change."""
        if name in (self.head_param_names() if head is None else head):
            return -1
        inner = name[4:] if name.startswith("net.") else name
        for i, block in enumerate(self._blocks):
            if any(inner == p or inner.startswith(p + ".") for p in block.prefixes):
                return i
        return self.n_blocks - 1

    def _assign_parameters(self) -> dict[str, int]:
        """Map every parameter name to its block index (`block_of`)."""
        head = self.head_param_names()
        return {name: self.block_of(name, head) for name, _ in self.named_parameters()}

    def block_param_counts(self) -> list[int]:
        counts = [0] * self.n_blocks
        for name, p in self.named_parameters():
            if self._owner[name] >= 0:
                counts[self._owner[name]] += p.numel()
        return counts

    def param_groups(self) -> dict[int, list[nn.Parameter]]:
        groups: dict[int, list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            groups.setdefault(self._owner[name], []).append(p)
        return groups

    # ---- freezing --------------------------------------------------------
    def freeze(self, depth: int) -> None:
        """Freeze blocks [0, depth): no gradients, and eval mode so BatchNorm statistics and dropout stay fixed."""
        if not 0 <= depth <= self.n_blocks:
            raise ValueError(f"freeze depth {depth} is out of range for {self.name}: use 0..{self.n_blocks}")
        self.freeze_blocks(range(depth))

    def freeze_blocks(self, frozen: Iterable[int]) -> None:
        """Freeze exactly these blocks, the rest and the head train: surgical fine-tuning freezes blocks after
        the one it tunes too. `freeze_depth` stays the length of the frozen prefix (where activations can be cached)."""
        frozen = frozenset(frozen)
        if not frozen <= set(range(self.n_blocks)):
            raise ValueError(f"blocks {sorted(frozen)} are out of range for {self.name}: use 0..{self.n_blocks - 1}")
        self._frozen = frozen
        self.freeze_depth = next(i for i in range(self.n_blocks + 1) if i not in frozen)
        for name, p in self.named_parameters():
            p.requires_grad_(self._owner[name] not in frozen)
        self.train(self.training)

    @property
    def frozen_blocks(self) -> frozenset[int]:
        """The indices of the blocks frozen now."""
        return self._frozen

    def frozen_modules(self) -> list[nn.Module]:
        mods = []
        for block in (self._blocks[i] for i in sorted(self._frozen)):
            if block.forward is not None:
                mods.append(block.forward)
            for prefix in block.prefixes:
                try:
                    mods.append(self.net.get_submodule(prefix))
                except AttributeError:
                    pass  # a bare parameter, not a module
        if self.n_blocks - 1 in self._frozen:  # the neck's parameters belong to the last block
            mods.append(self.neck)
        return mods

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        if self.batchnorm_inference:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def count_params(self) -> tuple[int, int]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total

    # ---- forward -----------------------------------------------------------
    def run_blocks(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for block in self._blocks[start:stop]:
            x = block.forward(x)
        return x

    def pooled(self, h, start: int) -> torch.Tensor:
        """What the head sees, from an activation at block boundary `start` (start == n_blocks: already pooled)."""
        if start == self.n_blocks:
            return h
        if self.sequential:
            return self.neck(self.run_blocks(h, start, self.n_blocks))
        if start == 0:
            return self.features(h)
        hidden = self._text_cut().top(self.net, h["hidden"], h["attention_mask"], start - 1)
        return _mean_pool(hidden, h["attention_mask"])

    def suffix(self, h, start: int) -> torch.Tensor:
        """Logits from an activation at block boundary `start` (start == n_blocks means pooled features)."""
        return self.get_head()(self.pooled(h, start))

    def features(self, x) -> torch.Tensor:
        if self.sequential:
            return self.neck(self.run_blocks(x, 0, self.n_blocks))
        out = self.net(input_ids=x["input_ids"], attention_mask=x["attention_mask"])
        return _mean_pool(out.last_hidden_state, x["attention_mask"])

    def boundary(self, x, depth: int):
        """The activation a depth-`depth` fine-tune starts from (pooled features when everything is frozen).
        Text: {"hidden": the hidden states entering layer depth-1, "attention_mask": the tokens' mask}."""
        if depth == self.n_blocks:
            return self.features(x)
        if self.sequential:
            return self.run_blocks(x, 0, depth)
        if depth == 0:
            return x
        return {"hidden": self._text_cut().bottom(self.net, x, depth - 1), "attention_mask": x["attention_mask"]}

    def _text_cut(self) -> TextCut:
        if self.text_cut is None:
            raise ValueError(f"{self.name} runs its encoder whole: it can only cache pooled features")
        return self.text_cut

    def forward(self, x) -> torch.Tensor:
        return self.get_head()(self.features(x))

    def vision_input(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """Normalised and channels-last, the memory layout `preparation.prepare` gives the network."""
        return self.normalize(images_uint8).contiguous(memory_format=torch.channels_last)

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [N,3,H,W] -> float, normalised the way the weights were trained."""
        mean = torch.tensor(self.preprocess.mean, device=images_uint8.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess.std, device=images_uint8.device).view(1, 3, 1, 1)
        return (images_uint8.float() / 255.0 - mean) / std


def _mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real tokens (padding excluded): the sentence embedding the head sees."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
