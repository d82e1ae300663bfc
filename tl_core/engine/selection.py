"""Which epoch a run keeps: the one with the best validation accuracy, chosen without looking at test.

The run reports the test accuracy of the weights this selection restores, so the number a student reads was
not picked on the items it is measured on.
"""

from __future__ import annotations

import torch
from torch import nn

from tl_core.engine import precise_bn


class Selection:
    """Keeps the weights of the epoch with the best validation accuracy (ties: the lower validation loss)."""

    def __init__(self, model: nn.Module):
        self.model, self.epoch, self.key, self.state = model, 0, None, None
        self.tracked = self._tensors()  # fixed at the start: gradual unfreezing makes more of them train later

    def offer(self, epoch: int, val_acc: float, val_loss: float, source: dict[str, torch.Tensor] | None = None) -> None:
        """`source`: the same tensors of the model that was scored, where that is a copy (`evaluation.Evaluations`)."""
        key = (val_acc, -val_loss)
        if self.key is None or key > self.key:
            self.epoch, self.key = epoch, key
            self.state = {k: v.detach().clone() for k, v in (source or self.tracked).items()}

    def restore(self) -> None:
        """Put the kept epoch's weights back into the model."""
        if self.state is not None:
            with torch.no_grad():
                for k, v in self.tracked.items():
                    v.copy_(self.state[k])

    def _tensors(self) -> dict[str, torch.Tensor]:
        """What training changes: trainable parameters and the statistics of BatchNorm layers that train."""
        out = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        norms = set(precise_bn.trained_batchnorms(self.model))
        for name, module in self.model.named_modules():
            if module in norms:
                out.update({f"{name}.{b}": t for b, t in module.named_buffers(recurse=False)})
        return out
