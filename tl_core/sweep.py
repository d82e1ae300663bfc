"""Grids of controlled runs: the experiments of the papers a class reproduces.

A freeze-depth sweep (Yosinski et al. 2014: frozen-at-k vs fine-tuned-from-k,
plus a random-init control) and a labels-per-class sweep (when does transfer
pay?) are lists of TrainConfigs that differ in one setting only, so the split,
seed and initial head stay the same.
"""

from __future__ import annotations

from dataclasses import replace

from .config import TrainConfig


def sweep_configs(base: TrainConfig, *, modes=("frozen", "finetune", "scratch"), depths=(None,),
                  labels_per_class=(None,)) -> list[TrainConfig]:
    """Every (labels per class, mode, depth) combination; depth only varies fine-tuning."""
    configs = []
    for n in labels_per_class:
        for mode in modes:
            for depth in depths if mode == "finetune" else (None,):
                configs.append(replace(base, mode=mode, freeze_depth=depth if mode == "finetune" else None,
                                       lp_ft=base.lp_ft and mode == "finetune",
                                       labels_per_class=n if n is not None else base.labels_per_class))
    return configs


def parse_int_list(text: str | None) -> tuple:
    """'0,3,6' -> (0, 3, 6); empty -> (None,) meaning 'the base setting'."""
    if not text:
        return (None,)
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated whole numbers, got '{text}'") from None
