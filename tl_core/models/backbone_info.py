"""What the app and the run plan know about a backbone without building it, as one typed record.

`backbones.info(name)` returns it; `backbones.describe(name)` is its dict for pages that keep dicts. It imports no
torch, so the run plan (tl_core.engine.plan) reads it without loading the engine. Everything that differs between
backbones (its blocks, its preprocessing, its ImageNet accuracy, its native size) is a field here, filled by the
backbone's own entry in the registry: no caller checks a backbone's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    family: str  # "vision" or "text"
    arch: str  # the family name users know: ResNet, BERT, ...
    description: str
    blocks: tuple[str, ...]
    block_params: tuple[int, ...]
    feature_dim: int  # the pooled features the new head reads
    weights: str  # "bundled", "cached" or "download" (tl_core.models.backbones.weights_status)
    batchnorm_layers: int  # AdaBN needs some; transformers normalise with LayerNorm
    block_cache: bool  # a partly frozen run can cache the activations at its freeze boundary
    # vision only
    default_image_size: int | None = None  # the size the weights were trained at
    min_image_size: int | None = None
    fixed_image_size: int | None = None  # position embeddings fix ViT's input size
    imagenet_acc1: float | None = None  # ImageNet top-1 (%) as published with the weights; None where unknown
    mean: tuple[float, ...] | None = None  # the pixel normalisation the weights expect
    std: tuple[float, ...] | None = None
    # text only
    hf_id: str | None = None

    @property
    def params(self) -> int:
        return int(sum(self.block_params))

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (`python -m tl_core backbones --json`, the pages): lists, `params`, and only the keys
        of the backbone's family."""
        d = asdict(self)
        d.update(blocks=list(self.blocks), block_params=list(self.block_params), params=self.params)
        drop = _TEXT_KEYS if self.family == "vision" else _VISION_KEYS
        d = {k: v for k, v in d.items() if k not in drop}
        for key in ("mean", "std"):
            if d.get(key) is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | BackboneInfo) -> BackboneInfo:
        if isinstance(data, BackboneInfo):
            return data
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in data.items() if k in known}
        d["blocks"], d["block_params"] = tuple(d["blocks"]), tuple(int(c) for c in d["block_params"])
        d.setdefault("weights", "download")
        d.setdefault("batchnorm_layers", 0)
        d.setdefault("block_cache", d.get("family") == "vision")
        d.setdefault("arch", d["name"])
        d.setdefault("description", "")
        return cls(**d)


_VISION_KEYS = frozenset({"default_image_size", "min_image_size", "fixed_image_size", "imagenet_acc1", "mean", "std"})
_TEXT_KEYS = frozenset({"hf_id"})
