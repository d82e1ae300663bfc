"""The classroom demo: the same backbone, data, split, seed and initial head, trained three ways.

Sized to finish in well under a minute on two CPU cores (see bench/bench_demo.py):
25 labels per class is where transfer visibly pays off; batch 16 gives the from-scratch
baseline enough steps to leave chance. Fine-tuning the last
stages on cached activations costs little more than feature extraction.
"""

from __future__ import annotations

from dataclasses import replace

from .config import TrainConfig

DEMO_BASE = TrainConfig(data="builtin:animals", backbone="mobilenet_v2", labels_per_class=25, val_per_class=20,
                        image_size=64, epochs=8, batch_size=16, seed=0)
DEMO_FINETUNE_DEPTH = 5  # stem + stages 1-4 frozen; stages 5-7 and the head conv adapt


def classroom_demo_configs(base: TrainConfig = DEMO_BASE, **overrides) -> list[TrainConfig]:
    """Frozen, fine-tuned and from-scratch configs, in the order a class should see them."""
    base = replace(base, **overrides)
    return [replace(base, mode="frozen", freeze_depth=None),
            replace(base, mode="finetune", freeze_depth=overrides.get("freeze_depth", DEMO_FINETUNE_DEPTH)),
            replace(base, mode="scratch", freeze_depth=None)]
