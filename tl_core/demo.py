"""The classroom demo: the same backbone, data, split, seed and initial head, trained three ways.

Sized to finish in well under a minute on two CPU cores (see bench/bench_demo.py):
25 labels per class is where transfer visibly pays off; batch 16 gives the from-scratch
baseline enough steps to leave chance. Fine-tuning the last
stages on cached activations costs little more than feature extraction.

The frozen run goes first, alone: it finishes in about a second and puts a curve on
the screen while the class is still looking; the two slower runs then share the cores.
"""

from __future__ import annotations

from dataclasses import replace

from .config import TrainConfig
from .jobs import JobManager

DEMO_BASE = TrainConfig(data="builtin:animals", backbone="mobilenet_v2", labels_per_class=25, val_per_class=20,
                        image_size=64, epochs=8, batch_size=16, seed=0)
DEMO_FINETUNE_DEPTH = 5  # stem + stages 1-4 frozen; stages 5-7 and the head conv adapt


def classroom_demo_configs(base: TrainConfig = DEMO_BASE, **overrides) -> list[TrainConfig]:
    """Frozen, fine-tuned and from-scratch configs, in the order a class should see them."""
    base = replace(base, **overrides)
    return [replace(base, mode="frozen", freeze_depth=None),
            replace(base, mode="finetune", freeze_depth=overrides.get("freeze_depth", DEMO_FINETUNE_DEPTH)),
            replace(base, mode="scratch", freeze_depth=None)]


def submit_demo(manager: JobManager, owner: str, configs: list[TrainConfig] | None = None) -> list[str]:
    """Queue the three runs: frozen now, the others once it has ended. Returns the job ids in that order."""
    frozen, *rest = configs or classroom_demo_configs()
    first = manager.submit(frozen, owner=owner, label=f"demo:{frozen.mode}")
    return [first, *(manager.submit(c, owner=owner, label=f"demo:{c.mode}", after=first) for c in rest)]


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
