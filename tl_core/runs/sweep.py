"""Grids of controlled runs: the experiments of the papers a class reproduces.

A freeze-depth sweep (Yosinski et al. 2014: frozen-at-k vs fine-tuned-from-k,
plus a random-init control) and a labels-per-class sweep (when does transfer
pay?) are lists of TrainConfigs that differ in one setting only, so the split,
seed and initial head stay the same.
"""

from __future__ import annotations

from dataclasses import replace

from tl_core.config import RECIPES, TrainConfig


def sweep_configs(base: TrainConfig, *, modes=("frozen", "finetune", "scratch"), depths=(None,),
                  labels_per_class=(None,), seeds: int = 1) -> list[TrainConfig]:
    """Every (labels per class, mode, depth, seed) combination; depth only varies fine-tuning.

    Seeds are base.seed, base.seed + 1, ...: each changes the split and the initial weights together, the same way
    in every mode, so seed s of a pretrained cell and seed s of the baseline make a paired comparison.
    """
    configs = []
    for n in labels_per_class:
        for mode in modes:
            for depth in depths if mode == "finetune" else (None,):
                for seed in range(base.seed, base.seed + max(1, seeds)):
                    same = base.recipe is not None and RECIPES[base.recipe] == mode  # a recipe keeps to its mode
                    configs.append(replace(base, mode=mode, freeze_depth=depth if mode == "finetune" else None,
                                           lp_ft=base.lp_ft and mode == "finetune", seed=seed,
                                           recipe=base.recipe if same else None,
                                           surgical_block=base.surgical_block if same else None,
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


#: The labels-per-class values of the data-efficiency lesson ("when does transfer pay?").
EFFICIENCY_LABELS = (5, 10, 25)
#: The lesson's image side: every arm of every cell trains to convergence (400 optimizer steps for each network
#: that trains), so the grid runs at this size, where it fits a lesson on two CPU cores; the comparison stays
#: fair, since every arm sees the same pixels.
LESSON_IMAGE_SIZE = 32


def lesson_image_size(base: TrainConfig) -> int | None:
    """LESSON_IMAGE_SIZE for a vision backbone that accepts it (never more than the page's own size); text and
    fixed-size backbones keep theirs."""
    from tl_core.models import backbones

    spec = backbones.get_spec(base.backbone)
    if spec.family != "vision" or spec.fixed_image_size or base.image_size is None:
        return base.image_size
    return min(base.image_size, max(LESSON_IMAGE_SIZE, spec.min_image_size))


def efficiency_configs(base: TrainConfig, max_per_class: int, *, seeds: int = 3, depth: int | None = None,
                       labels=EFFICIENCY_LABELS) -> list[TrainConfig]:
    """Frozen, fine-tuned (at `depth`) and from-scratch runs (each network trained to convergence) for every
    labels-per-class value the data holds, over `seeds` seeds, at the lesson's image size. Each mode gets its own
    default learning rate."""
    values = [n for n in labels if n <= max_per_class] or [max_per_class]
    base = replace(base, lr=None, budget=None, lp_ft=False, recipe=None, surgical_block=None, pretrained=True,
                   image_size=lesson_image_size(base))
    return sweep_configs(base, depths=(depth,), labels_per_class=values, seeds=seeds)


def missing(configs: list[TrainConfig], runs) -> list[TrainConfig]:
    """The configs no completed run in `runs` has already answered (the same setting and seed): a sweep started
    again, or grown, trains only what is new."""
    from tl_core.runs.comparison import reportable, setting_of

    done = {(setting_of(r), (r.get("config") or {}).get("seed", 0)) for r in runs or [] if reportable(r)}
    key = lambda c: (setting_of({"config": c.to_dict(), "summary": {}}), c.seed)  # noqa: E731
    return [c for c in configs if key(c) not in done]
