"""The classroom demo: the same backbone, data, splits and initial heads, trained three ways, over three seeds.

Sized to finish in under a minute on two CPU cores (see bench/bench_demo.py): 25 labels per class is where
transfer visibly pays off; batch 16 gives the from-scratch baseline enough steps to leave chance. Each mode runs
for DEMO_SEEDS seeds (each a different split and initialisation), so the gap the class reads comes with its
spread. The from-scratch runs keep the pretrained runs' short budget, and the page says so next to the bar: a
baseline trained to convergence takes minutes (`--budget converge`, the default of `python -m tl_core train`).

The frozen runs go first, alone: they finish in seconds and put curves on the screen while the class is still
looking; the slower runs then share the cores.
"""

from __future__ import annotations

from dataclasses import replace

from .config import TrainConfig
from .jobs import JobManager

DEMO_BASE = TrainConfig(data="builtin:animals", backbone="mobilenet_v2", labels_per_class=25, val_per_class=20,
                        image_size=64, epochs=8, batch_size=16, seed=0)
DEMO_FINETUNE_DEPTH = 5  # stem + stages 1-4 frozen; stages 5-7 and the head conv adapt
DEMO_SEEDS = 3
#: Shown beside the demo's progress: the baseline's budget is part of the result.
BUDGET_NOTE = ("From scratch gets the same short budget as the pretrained runs here, so the gap is an upper bound: "
               "a baseline trained to convergence (at least 400 steps) takes minutes, run it from the Train page.")


def classroom_demo_configs(base: TrainConfig = DEMO_BASE, seeds: int = DEMO_SEEDS, **overrides) -> list[TrainConfig]:
    """Frozen, fine-tuned and from-scratch configs for each seed, in the order a class should see them: every
    frozen seed first, then fine-tuning and scratch seed by seed."""
    base = replace(base, budget="fixed", **overrides)
    depth = overrides.get("freeze_depth", DEMO_FINETUNE_DEPTH)
    seeds_ = range(base.seed, base.seed + max(1, seeds))
    return ([replace(base, mode="frozen", freeze_depth=None, seed=s) for s in seeds_]
            + [replace(base, mode=m, freeze_depth=depth if m == "finetune" else None, seed=s)
               for s in seeds_ for m in ("finetune", "scratch")])


def submit_demo(manager: JobManager, owner: str, configs: list[TrainConfig] | None = None) -> list[str]:
    """Queue the runs: the frozen ones now, the others once the first frozen run has ended. Returns the job ids
    in the order of `configs`."""
    configs = configs or classroom_demo_configs()
    first = manager.submit(configs[0], owner=owner, label=f"demo:{configs[0].mode}")
    return [first, *(manager.submit(c, owner=owner, label=f"demo:{c.mode}", after=None if c.mode == "frozen" else first)
                     for c in configs[1:])]


def warm_up(base: TrainConfig = DEMO_BASE) -> None:
    """What a server does once at start so the demo's first click trains at once: import the vision stack,
    decode the data, read the weights, and run one small forward pass (the CPU kernels are set up on first use)."""
    import torch

    from . import backbones, data, training

    data.load_dataset(base.data)
    model = backbones.build(base.backbone, n_classes=2, pretrained=True, image_size=base.image_size)
    model.eval().to(memory_format=torch.channels_last)
    with torch.no_grad():
        model(training.vision_input(model, torch.zeros(2, 3, base.image_size, base.image_size, dtype=torch.uint8)))
