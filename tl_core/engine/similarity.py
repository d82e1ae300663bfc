"""Which blocks did fine-tuning change? Linear CKA between the pretrained and the fine-tuned network.

Centred kernel alignment (Kornblith et al. 2019) compares two sets of activations for the same inputs
and ignores rotations and scale, so 1.0 means "this block still computes the same features". Measured
after each block on a few validation items, it shows what Raghu et al. (2019) saw: lower blocks barely
move, the last ones change most, and frozen blocks stay at exactly 1.
"""

from __future__ import annotations

import torch

from tl_core.models.model import TransferModel

PROBE_ITEMS = 128  # the Gram matrices are items x items: a hundred items give a stable estimate
PROBE_ITEMS_LARGE = 48  # inputs over 128 px: one block's activations for all items must fit in memory


def probe_count(model: TransferModel, available: int) -> int:
    large = model.family == "vision" and (model.preprocess.image_size or 0) > 128
    return min(available, PROBE_ITEMS_LARGE if large else PROBE_ITEMS)


def centered_gram(h: torch.Tensor) -> torch.Tensor:
    """Items x items Gram matrix of centred features: all CKA needs, and small whatever the layer's width."""
    h = h.flatten(1).double()
    h = h - h.mean(0)
    return h @ h.T


def cka_from_grams(kx: torch.Tensor, ky: torch.Tensor) -> float:
    denom = torch.sqrt((kx * kx).sum() * (ky * ky).sum())
    return float((kx * ky).sum() / denom) if denom > 0 else 1.0


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA of two activation matrices [items, ...] over the same items (features flattened)."""
    return cka_from_grams(centered_gram(x), centered_gram(y))


@torch.no_grad()
def block_grams(model: TransferModel, x, start: int = 0) -> list[torch.Tensor]:
    """The centred Gram matrix of the activation after every block from `start` on (text: mean-pooled per layer,
    all of them). Vision `x` is the activation at boundary `start`; one block's activations are held at a time,
    so a wide early block of a large network still fits."""
    was_training = model.training
    model.eval()
    try:
        if model.family == "vision":
            h, grams = x, []
            for i in range(start, model.n_blocks):
                h = model.run_blocks(h, i, i + 1)
                grams.append(centered_gram(h.float()).cpu())
            return grams
        out = model.net(input_ids=x["input_ids"], attention_mask=x["attention_mask"], output_hidden_states=True)
        mask = x["attention_mask"].unsqueeze(-1).float()
        return [centered_gram((h.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)).cpu() for h in out.hidden_states]
    finally:
        model.train(was_training)


@torch.no_grad()
def block_similarity(reference: TransferModel, tuned: TransferModel, x, frozen: int = 0) -> list[float]:
    """CKA per block between `reference` (the pretrained start) and `tuned`, on the inputs `x`.

    The first `frozen` blocks are the same weights in both: they score 1 without being compared, and for
    vision the shared prefix runs once, the two networks only after it.
    """
    if tuned.family == "vision":
        was_training = tuned.training
        h = tuned.eval().run_blocks(tuned.vision_input(x), 0, frozen)
        tuned.train(was_training)
        before, after = block_grams(reference, h, frozen), block_grams(tuned, h, frozen)
        n_compared = tuned.n_blocks - frozen
    else:  # an encoder runs whole
        before, after = block_grams(reference, x), block_grams(tuned, x)
        n_compared, frozen = tuned.n_blocks, 0
    if len(before) != n_compared or len(after) != n_compared:
        raise ValueError(f"{tuned.name}: {len(after)} layer outputs for {n_compared} blocks")
    return [1.0] * frozen + [round(cka_from_grams(b, a), 6) for b, a in zip(before, after)]
