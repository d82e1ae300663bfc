"""From a batch of a run's inputs to logits: the one place that knows whether the frozen prefix is cached.

Training, evaluation and precise BatchNorm all call `Stepper.logits`; whether a batch holds images, tokens or
the activations at the freeze boundary, and whether it is augmented, is decided here once.
"""

from __future__ import annotations

import math

import torch

from tl_core.engine.preparation import Prepared


class Stepper:
    """Turns raw inputs into logits for the current setting: cached suffix, or the whole model."""

    def __init__(self, prep: Prepared, cached: bool):
        self.model, self.prep, self.cached = prep.model, prep, cached
        self.gen = torch.Generator().manual_seed(prep.config.seed)

    def model_input(self, x, train: bool):
        if self.cached or self.model.family != "vision":
            return x
        if train and self.prep.config.augment:
            x = augment(x, self.prep.config.image_size, self.gen)
        return self.model.vision_input(x)

    def set_train(self, mode: bool) -> None:
        """Only the part that runs each step changes mode; on pooled features that is just the head (no BN, no dropout)."""
        if not self.head_only:
            self.model.train(mode)

    def logits(self, x, train: bool) -> torch.Tensor:
        x = self.model_input(x, train)
        return self.model.suffix(x, self.prep.depth) if self.cached else self.model(x)

    @property
    def head_only(self) -> bool:
        """Pooled features cached: the run is a convex fit of the head alone."""
        return self.cached and self.prep.depth == self.model.n_blocks


def augment(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop (60-100% of the area, aspect 3/4-4/3) and horizontal flip, drawn from the run's generator."""
    from torchvision.transforms.v2 import functional as F

    h, w = images.shape[-2:]
    out = []
    for img in images:  # per image, so each gets its own crop
        u = torch.rand(4, generator=gen).tolist()
        area, ratio = h * w * (0.6 + 0.4 * u[0]), math.exp(math.log(3 / 4) + math.log(16 / 9) * u[1])
        ch, cw = min(h, round(math.sqrt(area / ratio))), min(w, round(math.sqrt(area * ratio)))
        top, left = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
        img = F.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
        out.append(img.flip(-1) if torch.rand(1, generator=gen).item() < 0.5 else img)
    return torch.stack(out)
