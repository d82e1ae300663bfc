"""The run's plan from its settings and its data, made once: what `prepare` trains and what the app shows first.

`plan_for` is the one way to get a plan. The app calls it before Start (the plan on the Model and Train pages is
the plan the run receives), the job manager sends it with the run to its worker, `prepare` builds the model it
describes, and the run store keeps it. It reads the backbone's description and the split's size; it builds no model
and reads no weights.
"""

from __future__ import annotations

import numpy as np

from tl_core.config import TrainConfig
from tl_core.engine.plan import RunPlan, plan_run
from tl_core.errors import ConfigError
from tl_core.inputs import data
from tl_core.models import backbones


def default_image_size(spec: backbones.BackboneSpec, ds: data.Dataset) -> int:
    """The backbone's own size, or 64 px for small native images (digits): upscaling them further adds nothing."""
    if spec.fixed_image_size:
        return spec.fixed_image_size
    native = ds.images.shape[1] if isinstance(ds.images, np.ndarray) else None
    size = 64 if native is not None and native <= 64 else spec.default_image_size
    return max(size, spec.min_image_size)


def resolve(config: TrainConfig, ds: data.Dataset) -> TrainConfig:
    """The settings left to "auto" made explicit (image size, freeze depth), as they are stored with the run: two
    configs that train the same thing then compare equal. The depth is the plan's (`plan.default_depth`)."""
    spec = backbones.get_spec(config.backbone)
    if spec.family == "vision":
        config.image_size = backbones.check_image_size(spec, config.image_size or default_image_size(spec, ds))
    if config.mode == "finetune" and config.freeze_depth is None and config.recipe != "surgical":
        config.freeze_depth = _plan(config, ds).depth
    return config


def plan_for(config: TrainConfig, dataset: data.Dataset, *, n_train: int | None = None) -> RunPlan:
    """The whole plan: what trains per block and per epoch, each block's rate, and how long the run trains.
    `config` is resolved in place (`resolve`); `n_train`: the training items when the split is already made."""
    resolve(config, dataset)
    if n_train is None:
        n_train = len(data.make_split(dataset, val_per_class=config.val_per_class,
                                      test_per_class=config.test_per_class, labels_per_class=config.labels_per_class,
                                      seed=config.seed).train)
    return _plan(config, dataset).with_budget(config.effective_budget, config.epochs, config.batch_size, n_train,
                                              augment=config.augment)


def checked_plan(config: TrainConfig, dataset: data.Dataset, *, n_train: int | None = None) -> RunPlan:
    """`plan_for`, raising its first problem as a ConfigError (the run cannot start)."""
    plan = plan_for(config, dataset, n_train=n_train)
    if plan.problems:
        raise ConfigError(plan.problems[0])
    return plan


def config_plan(config: TrainConfig, n_classes: int) -> RunPlan:
    """What trains, from the settings alone: no data read and no budget planned. The picture the Model page and
    the demo draw before a split exists; `plan_for` starts from it."""
    return plan_run(config.mode, config.freeze_depth, backbones.info(config.backbone), n_classes,
                    image_size=config.image_size, max_length=config.max_length, recipe=config.recipe,
                    surgical_block=config.surgical_block, pretrained=config.pretrained)


def _plan(config: TrainConfig, ds: data.Dataset) -> RunPlan:
    return config_plan(config, len(ds.classes))
