"""Precise BatchNorm: re-estimate the running statistics of the trained BatchNorm layers before evaluating.

During training BatchNorm normalises with the batch's own statistics and keeps an exponential moving average for
evaluation. After a few dozen optimizer steps from random weights that average still describes the network as it
was, not as it is: in eval mode every item then lands in one class while the training loss has long fallen (a
from-scratch run at 10 labels per class on animals scored 0.10 for that reason alone). Recomputing the statistics
with the current weights on the training inputs (one forward pass, no gradient, equal weight per batch) removes
the artifact (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"). Frozen layers keep their pretrained statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

#: Items used to estimate the statistics (a seeded spread of the training set beyond this).
MAX_ITEMS = 2048


def trained_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """BatchNorm layers whose statistics move while the model trains (not frozen, not pinned to inference)."""
    if getattr(model, "batchnorm_inference", False):
        return []
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            and any(p.requires_grad for p in m.parameters(recurse=False))]


def all_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer that keeps running statistics, frozen or not: what AdaBN (Li et al. 2016) re-estimates."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute(model: nn.Module, batches: Iterable, forward: Callable[[object], object],
              norms: list[nn.modules.batchnorm._BatchNorm] | None = None) -> int:
    """Reset and re-estimate the statistics of `norms` (default `trained_batchnorms(model)`) from `forward(batch)`
    over `batches`.

    Only those layers run in training mode (dropout and everything else stay in eval mode). Returns how many layers
    were re-estimated (0: nothing to do, and nothing ran).
    """
    norms = trained_batchnorms(model) if norms is None else norms
    if not norms:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch counts the same
        m.train()
    try:
        for batch in batches:
            forward(batch)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return len(norms)
