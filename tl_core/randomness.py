"""Same seed, same numbers: every random draw of a run comes from generators the run owns.

The app trains several runs at once on threads of one process, and torch's default generator is shared by all of
them: a from-scratch run initialised while another run was being built drew different weights (36.5% one click,
40.5% the next). So model construction, which seeds and uses the default generator, runs under one lock, and the
modules that draw at every training step (dropout, stochastic depth) are swapped for versions that draw from the
run's own generator. Attention-probability dropout inside Hugging Face encoders is passed to a fused kernel that
only takes the default generator; text runs are reproducible alone, and beside others once runs train in their own
worker processes.
"""

from __future__ import annotations

import threading

import torch
from torch import nn

#: Held while a model is constructed: seeding the default generator and drawing the initial weights is one step.
BUILD_LOCK = threading.RLock()


class _RunGenerators:
    """One generator per device, all derived from the run's seed."""

    def __init__(self, seed: int):
        self.seed, self._by_device = seed, {}

    def on(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._by_device:
            self._by_device[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._by_device[key]


class SeededDropout(nn.Dropout):
    """nn.Dropout drawing its mask from the run's generator (keeps `p`, which some encoders read)."""

    def __init__(self, p: float, generators: _RunGenerators):
        super().__init__(p)
        self._gens = generators

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=self._gens.on(x.device))
        return x * mask / keep


def _seeded_stochastic_depth(module: nn.Module, generators: _RunGenerators) -> nn.Module:
    from torchvision.ops import StochasticDepth

    class SeededStochasticDepth(StochasticDepth):
        """torchvision's StochasticDepth (drop whole residual branches per item) with the run's generator."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training or self.p == 0.0:
                return x
            survival = 1.0 - self.p
            shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
            noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival,
                                                                                  generator=generators.on(x.device))
            return x * noise.div_(survival) if survival > 0 else x * noise

    return SeededStochasticDepth(module.p, module.mode)


def own_randomness(net: nn.Module, seed: int) -> int:
    """Swap dropout and stochastic depth inside `net` for seeded versions, in place. Returns how many were swapped.

    Call it before anything keeps references to the modules (the vision block views are built after).
    """
    from torchvision.ops import StochasticDepth

    generators, swapped = _RunGenerators(seed), 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, SeededDropout(child.p, generators))
            elif type(child) is StochasticDepth:
                setattr(parent, name, _seeded_stochastic_depth(child, generators))
            else:
                continue
            swapped += 1
    return swapped


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
