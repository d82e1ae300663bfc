"""Distribution shifts for the out-of-distribution check: a shifted copy of the test split.

Kumar et al. (2022) found that fine-tuning distorts pretrained features and loses accuracy out of distribution
where LP-FT keeps it. Every run is therefore also scored on the test items after one of these shifts. They apply
to evaluation only (training never sees them) and are deterministic, so every run of a comparison is scored on
the very same shifted items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from tl_core.config import DEFAULT_TEXT_SHIFT, IMAGE_SHIFTS, SHIFTS  # noqa: F401  (the names live with the settings)


def shift_for(name: str, kind: str) -> str:
    """The shift a run of data `kind` ("image" | "text") really gets: image shifts do not apply to text."""
    if kind == "text":
        return DEFAULT_TEXT_SHIFT
    return name if name in IMAGE_SHIFTS else "blur"


def shift_images(images: torch.Tensor, name: str, seed: int = 0) -> torch.Tensor:
    """uint8 [N,3,H,W] -> the same items, shifted, still uint8."""
    import torch
    from torchvision.transforms.v2 import functional as F

    if name == "invert":
        return 255 - images
    if name == "grayscale":
        return F.rgb_to_grayscale(images, num_output_channels=3)
    if name == "rotate":
        return F.rotate(images, 30.0, interpolation=F.InterpolationMode.BILINEAR)
    if name == "blur":
        sigma = max(0.5, 0.015 * images.shape[-1])
        kernel = 2 * int(3 * sigma) + 1
        return F.gaussian_blur(images, [kernel, kernel], [sigma, sigma])
    if name == "noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(images.shape, generator=gen) * 40.0
        return (images.float() + noise.to(images.device)).round().clamp(0, 255).to(torch.uint8)
    raise ValueError(f"unknown image shift '{name}'")


def shift_texts(texts: list[str], seed: int = 0) -> list[str]:
    """Typos: in one word of four (at least four letters long), two neighbouring letters swap places."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        words = text.split(" ")
        for i, w in enumerate(words):
            if len(w) >= 4 and rng.random() < 0.25:
                j = int(rng.integers(0, len(w) - 1))
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        out.append(" ".join(words))
    return out
