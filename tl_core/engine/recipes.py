"""The classic fine-tuning recipes as presets: each paper, one paragraph, and the numbers it sets.

A class learns more from "this is what ULMFiT does, and here is what it trains" than from a slider it has to set
by hand, so each recipe is a named preset. This module holds what a student reads (the paper, a paragraph, the
settings) and the arithmetic each recipe implies (which block trains from which epoch, each block's learning
rate, the slanted triangular schedule); the run plan (`plan.py`) applies it, so the Model page's drawing, the
Train page's sentence and the training loop all read one answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tl_core.config import RECIPES

#: ULMFiT's discriminative fine-tuning: each block learns at the rate of the block above it / 2.6
#: (Howard & Ruder 2018, section 3.2, found empirically for their language model; the head is the top).
DISCRIMINATIVE_DIVISOR = 2.6
#: ULMFiT's slanted triangular learning rate (section 3.2): a linear rise over the first `cut_frac` of the steps
#: to the maximum, then a linear decay to max / `ratio`.
STLR_CUT_FRAC = 0.1
STLR_RATIO = 32


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    paper: str  # authors, year, title
    url: str
    paragraph: str  # what it does and why, for a student
    sets: tuple[str, ...]  # the settings it implies, one line each

    @property
    def mode(self) -> str:
        return RECIPES[self.name]

    @property
    def label(self) -> str:
        """"Gradual unfreezing (Howard & Ruder 2018)" for pickers."""
        return f"{self.title} ({self.paper.split(':')[0]})"


CATALOGUE: dict[str, Recipe] = {r.name: r for r in [
    Recipe("lp-ft", "LP-FT: linear probe, then fine-tune",
           "Kumar et al. 2022: Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution",
           "https://arxiv.org/abs/2202.10054",
           "A new head starts random, and its first gradients flow back into the pretrained blocks and push them "
           "around before the head knows anything. LP-FT first fits the head alone on frozen features (a linear "
           "probe), then fine-tunes from that head: the pretrained features change less, which keeps accuracy on "
           "shifted data where plain fine-tuning can lose it.",
           ("mode: fine-tune at the freeze depth set", "the head is fitted on frozen features first",
            "BatchNorm keeps its pretrained running statistics")),
    Recipe("gradual", "Gradual unfreezing",
           "Howard & Ruder 2018: Universal Language Model Fine-tuning for Text Classification (ULMFiT)",
           "https://arxiv.org/abs/1801.06146",
           "Unfreezing everything at once lets the random head's large early gradients wreck the pretrained "
           "blocks (catastrophic forgetting). ULMFiT trains only the new head in the first epoch, then unfreezes "
           "one more block per epoch from the top down: the most task-specific blocks adapt first, the general "
           "low-level ones last and least. The learning rate rises briefly, then decays slowly (slanted "
           "triangular), so each newly unfrozen block starts with careful steps.",
           ("mode: fine-tune, freeze depth 0 (every block unfreezes in time)",
            "epoch 1: only the new head; each later epoch unfreezes the next block down",
            f"slanted triangular learning rate: up over the first {STLR_CUT_FRAC:.0%} of the steps, then down to "
            f"1/{STLR_RATIO} of the peak")),
    Recipe("discriminative", "Discriminative learning rates",
           "Howard & Ruder 2018: Universal Language Model Fine-tuning for Text Classification (ULMFiT)",
           "https://arxiv.org/abs/1801.06146",
           "Different blocks hold different kinds of knowledge: the first ones detect edges and textures that "
           "suit almost any image, the last ones parts and objects of the pretraining task. So each block gets "
           f"its own learning rate, smaller the deeper it sits: the top block learns at the head's rate / "
           f"{DISCRIMINATIVE_DIVISOR}, and each block below at the rate of the one above / {DISCRIMINATIVE_DIVISOR}.",
           ("mode: fine-tune, freeze depth 0 (every block trains)",
            f"block k below the head learns at lr / {DISCRIMINATIVE_DIVISOR}^k; the new head at lr",
            "cosine decay over the run, as every fine-tune")),
    Recipe("surgical", "Surgical fine-tuning",
           "Lee et al. 2023: Surgical Fine-Tuning Improves Adaptation to Distribution Shifts",
           "https://arxiv.org/abs/2210.11466",
           "Tuning one block can beat tuning them all, and which block depends on how the new data differ: for "
           "input-level shifts (blur, noise, new colours) the first blocks, for new classes or labels the last "
           "ones. Every other block stays exactly as pretrained, so little can be forgotten, and what the run "
           "changes is one block you chose.",
           ("mode: fine-tune one chosen block and the new head", "every other block frozen, the ones after it too",
            "lower blocks for input shifts, later blocks for new classes")),
    Recipe("adabn", "BatchNorm adaptation (AdaBN)",
           "Li et al. 2016: Revisiting Batch Normalization For Practical Domain Adaptation",
           "https://arxiv.org/abs/1603.04779",
           "BatchNorm layers store the mean and spread of the activations they saw in pretraining. New data "
           "with other colours, contrast or texture shift those numbers. AdaBN keeps every weight frozen and "
           "only re-measures the statistics on your training images: a domain adaptation that costs one "
           "forward pass and learns no weight. Then the new head is fitted on the adapted features.",
           ("mode: feature extraction (every block frozen, no weight changes)",
            "every BatchNorm layer's running mean and variance re-estimated on the training images",
            "then the new head is fitted on the adapted features")),
]}


def get(name: str | None) -> Recipe | None:
    return CATALOGUE.get(name) if name else None


def unfreeze_epoch(block: int, n_blocks: int) -> int:
    """Gradual unfreezing: the 1-based epoch from which `block` trains (the top block in epoch 2, the head alone
    in epoch 1), ignoring any freeze depth below which blocks never unfreeze."""
    return n_blocks - block + 1


def depth_at(epoch: int, n_blocks: int, floor: int) -> int:
    """Gradual unfreezing: the freeze depth in `epoch` (1-based): every block frozen in the first, one fewer each
    epoch after, never below `floor`."""
    return max(floor, n_blocks - (epoch - 1))


def discriminative_factor(block: int, n_blocks: int) -> float:
    """A block's learning rate / the head's: the top block (n_blocks - 1) is one step below the head."""
    return DISCRIMINATIVE_DIVISOR ** -(n_blocks - block)


def slanted_triangular(step: int, total_steps: int, cut_frac: float = STLR_CUT_FRAC,
                       ratio: float = STLR_RATIO) -> float:
    """The learning rate at optimizer step `step` (0-based) / the maximum (Howard & Ruder 2018, eq. 3):
    a linear rise from 1/ratio to 1 over the first cut_frac of the steps, then a linear fall back to 1/ratio.
    The cut is at least one step, so a run of a few steps still rises and falls."""
    cut = max(1, math.floor(total_steps * cut_frac))
    if step < cut:
        p = step / cut
    else:
        p = 1 - (step - cut) / max(1, total_steps - cut)
    p = min(1.0, max(0.0, p))
    return (1 + p * (ratio - 1)) / ratio
