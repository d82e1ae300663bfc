"""The classroom demo: the same backbone, data, split and initial head, trained three ways; feature extraction over
three seeds.

Sized for a lesson on two CPU cores (see bench/bench_app_start.py): 25 labels per class is where transfer visibly
pays off; batch 16 gives each network that trains enough optimizer steps. Every arm is trained properly: the frozen
head is fitted to convergence, and fine-tuning and the from-scratch baseline train with the default "converge"
budget (at least 400 steps, the epoch chosen on validation), so the gap the class reads is the fair one. Feature
extraction costs seconds, so it runs for DEMO_SEEDS seeds (each a different split and initialisation) and the class
sees how much a seed alone moves an accuracy; fine-tuning and training from scratch run once.

The first frozen run and the from-scratch baseline start together, each on its own core: the frozen run puts a
curve on the screen within seconds, and the longest run starts at the click. Fine-tuning and the other frozen
seeds follow on the first core.
"""

from __future__ import annotations

import os
from dataclasses import replace

from tl_core.config import TrainConfig

DEMO_BASE = TrainConfig(data="builtin:animals", backbone="mobilenet_v2", labels_per_class=25, val_per_class=20,
                        image_size=64, epochs=8, batch_size=16, seed=0)
DEMO_FINETUNE_DEPTH = 5  # stem + stages 1-4 frozen; stages 5-7 and the head conv adapt
DEMO_SEEDS = 3
#: Shown beside the demo's progress: the baseline's budget is part of the result.
BUDGET_NOTE = ("Fine-tuning and training from scratch both train to convergence (at least 400 optimizer steps, the "
               "best epoch on validation kept); the same short budget for every arm is one click away on the Train "
               "page.")


def classroom_demo_configs(base: TrainConfig = DEMO_BASE, seeds: int = DEMO_SEEDS, **overrides) -> list[TrainConfig]:
    """The runs in the order they should start: the first frozen seed, the from-scratch baseline (the longest),
    fine-tuning, then the other frozen seeds. Each with its mode's default budget."""
    base = replace(base, **overrides)
    depth = overrides.get("freeze_depth", DEMO_FINETUNE_DEPTH)
    frozen = [replace(base, mode="frozen", freeze_depth=None, seed=base.seed + i) for i in range(max(1, seeds))]
    slow = [replace(base, mode="scratch", freeze_depth=None), replace(base, mode="finetune", freeze_depth=depth)]
    return [frozen[0], *slow, *frozen[1:]]


def _env_int(name: str) -> int | None:
    try:
        v = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return v if v > 0 else None


def configured_demo_configs() -> list[TrainConfig]:
    """The demo this server runs: `classroom_demo_configs`, resized by TL_DEMO_EPOCHS, TL_DEMO_LABELS_PER_CLASS,
    TL_DEMO_VAL_PER_CLASS, TL_DEMO_IMAGE_SIZE, TL_DEMO_SEEDS and TL_DEMO_BUDGET ("fixed": every arm trains
    exactly its epochs) where set: the tests' small demo, which checks the pages, not the protocol. The Home page
    submits these, and the warm-up fills the activation cache for exactly these."""
    overrides = {}
    if os.environ.get("TL_DEMO_BUDGET") in ("fixed", "converge"):
        overrides["budget"] = os.environ["TL_DEMO_BUDGET"]
    for var, name in (("TL_DEMO_EPOCHS", "epochs"), ("TL_DEMO_LABELS_PER_CLASS", "labels_per_class"),
                      ("TL_DEMO_VAL_PER_CLASS", "val_per_class"), ("TL_DEMO_IMAGE_SIZE", "image_size")):
        if _env_int(var):
            overrides[name] = _env_int(var)
    return classroom_demo_configs(seeds=_env_int("TL_DEMO_SEEDS") or DEMO_SEEDS, **overrides)


def fill_order(index: int, workers: int) -> list[TrainConfig]:
    """The demo's runs that look something up in the shared activation cache, worker `index`'s share of them
    first (the first worker's begins with the demo's first run): a pool of workers fills them side by side,
    and each then reads what the others computed."""
    configs = [c for c in configured_demo_configs() if c.mode != "scratch"]
    mine = configs[index % max(1, workers)::max(1, workers)]
    return mine + [c for c in configs if c not in mine]


def fill_demo_cache(configs: list[TrainConfig] | None = None, stop=None) -> dict[str, int]:
    """Put in the shared activation cache (tl_core.engine.activation_cache) every entry the demo's runs will look
    up, through the same code path the runs take (`training.fill_shared_cache`): the first click of every student
    then runs no frozen forward pass. Entries already there cost a read. `stop()` returning True ends it early.
    Returns how many configs were a "hit" (already there), a "miss" (computed now), "off", or cache nothing."""
    from tl_core.engine import training
    from tl_core.inputs import data

    counts: dict[str, int] = {}
    datasets: dict[str, data.Dataset] = {}
    for config in configs or configured_demo_configs():
        if stop is not None and stop():
            break
        if config.data not in datasets:
            datasets[config.data] = data.load_dataset(config.data)
        status = training.fill_shared_cache(replace(config), datasets[config.data]) or "nothing cached"
        counts[status] = counts.get(status, 0) + 1
    return counts


def submit_demo(manager, owner: str, configs: list[TrainConfig] | None = None) -> list[str]:
    """Queue the runs on `manager` (a tl_core.runs.jobs.JobManager, not imported: the job manager's worker
    processes warm up with this module) in the order of `configs`: the first two start at once where two runs may
    train side by side. Returns the job ids in that order."""
    return [manager.submit(c, owner=owner, label=f"demo:{c.mode}") for c in configs or classroom_demo_configs()]


def warm_up(base: TrainConfig = DEMO_BASE, *, trains_here: bool = True) -> None:
    """What a process that trains does once at start so the demo's first click trains at once: import the vision
    stack and scikit-learn, decode the data, read the weights, and run forward passes at the batch sizes the first
    run uses (the CPU kernels are set up on first use, per shape). A server whose runs train in worker processes
    (`trains_here=False`) only needs the data its pages show: the workers warm the rest up themselves."""
    import torch

    from tl_core.models import backbones
    from tl_core.inputs import data
    from tl_core.engine import training

    data.load_dataset(base.data)
    if not trains_here:
        return
    model = backbones.build(base.backbone, n_classes=2, pretrained=True, image_size=base.image_size)
    model.eval().to(memory_format=torch.channels_last)
    with torch.no_grad():
        for n in (training.EVAL_BATCH, 2):
            model(model.vision_input(torch.zeros(n, 3, base.image_size, base.image_size, dtype=torch.uint8)))
    import sklearn.linear_model  # noqa: F401  the frozen head's fit
