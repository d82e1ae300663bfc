"""Everything a run decides before its first forward pass: the split, the plan, the model, the decoded inputs.

Loading time is not training time, so `prepare` is its own step: the app shows a run as "preparing" while it
runs, and a test can inspect the model and the inputs before `training.fit` touches them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from tl_core.config import TrainConfig
from tl_core.device import pick_device, use_cpu_threads
from tl_core.engine import memory
from tl_core.engine.plan import RunPlan
from tl_core.engine.planning import checked_plan, default_image_size, resolve  # noqa: F401  (public here too)
from tl_core.errors import ConfigError
from tl_core.inputs import data, shifts
from tl_core.models import backbones


@dataclass
class Prepared:
    """Everything decided before the first forward pass: loading time is not training time."""

    config: TrainConfig
    dataset: data.Dataset
    split: data.Split
    model: backbones.TransferModel
    device: torch.device
    depth: int
    x_train: object
    y_train: torch.Tensor
    x_val: object
    y_val: torch.Tensor
    y_test: torch.Tensor
    ood_shift: str
    plan: RunPlan

    # Decoded when first needed (the end of the run): the first curve point does not wait for them.
    @functools.cached_property
    def x_test(self):
        return _inputs(self.model, self.dataset, self.split.test, self.config, self.device)

    @functools.cached_property
    def x_ood(self):
        """The test items after `ood_shift`: evaluation only."""
        return _inputs(self.model, self.dataset, self.split.test, self.config, self.device, shift=self.ood_shift)


def prepare(config: TrainConfig, dataset: data.Dataset | None = None, plan: RunPlan | dict | None = None) -> Prepared:
    """Validate the settings, split the data, plan the run (or take the plan made before Start), build the model
    the plan describes, decode the inputs."""
    try:
        config.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    spec = backbones.get_spec(config.backbone)
    ds = dataset if dataset is not None else data.load_dataset(
        config.data, text_column=config.text_column, label_column=config.label_column)
    if ds.kind == "image" and spec.family != "vision" or ds.kind == "text" and spec.family != "text":
        want = "an image" if spec.family == "text" else "a text"
        raise ConfigError(f"{config.backbone} is a {spec.family} backbone but {ds.name} holds {ds.kind}s: "
                          f"pick {want} backbone (see `python -m tl_core backbones`)")
    split = data.make_split(ds, val_per_class=config.val_per_class, test_per_class=config.test_per_class,
                            labels_per_class=config.labels_per_class, seed=config.seed)
    device = pick_device(config.device)
    use_cpu_threads(config.threads)  # before any kernel runs: the count is part of the run's numerics
    plan = _given_plan(plan, config, ds, len(split.train))
    model = backbones.build(config.backbone, n_classes=len(ds.classes), pretrained=config.pretrained and config.mode != "scratch",
                            seed=config.seed, image_size=config.image_size, max_length=config.max_length)
    model.freeze_blocks(plan.frozen_indices)
    _check_plan(plan, model)
    if config.lp_ft:  # the head is fitted to features made with the running statistics: keep them (Keras does too)
        model.batchnorm_inference = True
        model.train(model.training)
    model.to(device)
    if model.family == "vision":  # channels-last convolutions: ~1.5x faster on CPU (oneDNN) and on tensor cores
        model.to(memory_format=torch.channels_last)
        memory.check_fits(model, image_size=config.image_size, batch_size=config.batch_size, device=device,
                          items=len(split.train) + len(split.val) + 2 * len(split.test),
                          trains_backbone=config.mode != "frozen")
    shift = shifts.shift_for(config.ood_shift, ds.kind)
    x_train, x_val = (_inputs(model, ds, idx, config, device) for idx in (split.train, split.val))
    y_train, y_val, y_test = (torch.as_tensor(ds.labels[idx], dtype=torch.long, device=device)
                              for idx in (split.train, split.val, split.test))
    return Prepared(config, ds, split, model, device, plan.depth, x_train, y_train, x_val, y_val, y_test, shift,
                    plan)


def _given_plan(plan: RunPlan | dict | None, config: TrainConfig, ds: data.Dataset, n_train: int) -> RunPlan:
    """The plan the run was sent with (a dict when it crossed a process), or the plan made here when none was."""
    if plan is None:
        return checked_plan(config, ds, n_train=n_train)
    plan = plan if isinstance(plan, RunPlan) else RunPlan.from_dict(plan)
    if plan.problems:
        raise ConfigError(plan.problems[0])
    resolve(config, ds)
    depth_differs = config.mode == "finetune" and config.recipe != "surgical" and plan.depth != config.freeze_depth
    if plan.n_train != n_train or plan.backbone != config.backbone or plan.mode.value != config.mode or depth_differs:
        raise AssertionError(f"the run's plan ({plan.backbone}, {plan.n_train} training items) was made for other "
                             f"settings than its config ({config.backbone}, {n_train})")
    return plan


def _check_plan(plan: RunPlan, model: backbones.TransferModel) -> None:
    """The pages showed the plan; the run must train exactly that."""
    trainable, total = model.count_params()
    if model.block_names != [b.name for b in plan.blocks] or (trainable, total) != (plan.trainable_params,
                                                                                    plan.total_params):
        raise AssertionError(f"{plan.backbone}: the model built ({trainable:,} of {total:,} parameters train) "
                             f"disagrees with its plan ({plan.trainable_params:,} of {plan.total_params:,})")


def _inputs(model, ds: data.Dataset, idx: np.ndarray, config: TrainConfig, device: torch.device, shift: str = ""):
    """Decoded once: uint8 images (normalised per batch) or token ids; `shift` makes the out-of-distribution copy."""
    if model.family == "vision":
        images = ds.image_batch(idx, config.image_size)
        return (shifts.shift_images(images, shift, seed=config.seed) if shift else images).to(device)
    texts = [ds.texts[i] for i in idx]
    if shift:
        texts = shifts.shift_texts(texts, seed=config.seed)
    enc = model.tokenizer(texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
