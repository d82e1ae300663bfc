"""Train one run: the loop reads on one screen, everything else is a callback.

Speed by design: when nothing before the freeze boundary can change (no augmentation), the boundary activations
are computed once and every epoch runs only the trainable suffix. A frozen run is then one forward pass plus a
small convex fit; a depth-K fine-tune skips the frozen prefix entirely.

Fair by design: the epoch is chosen on validation and the run reports its accuracy on a separate test split (and on
a shifted copy of it); BatchNorm statistics are re-estimated before every evaluation; a from-scratch baseline gets
its own learning rate and a minimum number of steps; and every run is checked for the failures that look like
results (one class predicted, stuck at chance).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import math
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from tl_core.models import backbones
from tl_core.inputs import data, shifts
from tl_core.engine import activation_cache, head_fit, health, memory, precise_bn, recipes
from tl_core.config import (BUDGET_HELP, CONVERGE_MAX_EPOCHS, CONVERGE_MIN_STEPS, TrainConfig)
from tl_core.device import deterministic, pick_device, use_cpu_threads
from tl_core.errors import ConfigError, failure_text
from tl_core.records import RunSummary
from tl_core.events import (CancelToken, Cancelled, EpochMetrics, Event, EventHandler, Message, RunFinished, RunStarted,
                     StepProgress)
from tl_core.engine.metrics import classification_report
from tl_core.engine.plan import HEAD_NAME, RunPlan, plan_run

#: Long runs (a from-scratch baseline on a few labels trains for a hundred short epochs) are evaluated about this
#: many times: each evaluation re-estimates BatchNorm and scores validation, which would otherwise cost more than
#: the training itself. The curve keeps this many points; the selection picks among them.
MAX_EVALUATIONS = 30
CACHE_BUDGET_BYTES = 3 * 2**30  # above this the boundary activations are recomputed each step instead
EVAL_BATCH = 64  # measured on 2 CPU cores: 64 images at a time beat 128 by 1.5-2x (cache-sized activations)




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


@dataclass
class RunResult:
    run_id: str
    status: str
    config: dict
    classes: list[str]
    history: list[dict] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)
    error: str | None = None
    model: nn.Module | None = None


# ---- preparation ---------------------------------------------------------------------
def default_image_size(spec: backbones.BackboneSpec, ds: data.Dataset) -> int:
    if spec.fixed_image_size:
        return spec.fixed_image_size
    native = ds.images.shape[1] if isinstance(ds.images, np.ndarray) else None
    size = 64 if native is not None and native <= 64 else spec.default_image_size
    return max(size, spec.min_image_size)


def resolve(config: TrainConfig, ds: data.Dataset) -> TrainConfig:
    """The settings left to "auto" made explicit (image size, freeze depth), as they are stored with the run: two
    configs that train the same thing then compare equal."""
    spec = backbones.get_spec(config.backbone)
    if spec.family == "vision":
        config.image_size = backbones.check_image_size(spec, config.image_size or default_image_size(spec, ds))
    if config.mode == "finetune" and config.freeze_depth is None:
        config.freeze_depth = 0
    return config


def prepare(config: TrainConfig, dataset: data.Dataset | None = None) -> Prepared:
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
    resolve(config, ds)
    plan = plan_run(config.mode, config.freeze_depth, backbones.describe(config.backbone), len(ds.classes),
                    image_size=config.image_size, max_length=config.max_length, recipe=config.recipe,
                    surgical_block=config.surgical_block, pretrained=config.pretrained)
    if plan.problems:
        raise ConfigError(plan.problems[0])
    model = backbones.build(config.backbone, n_classes=len(ds.classes), pretrained=config.pretrained and config.mode != "scratch",
                            seed=config.seed, image_size=config.image_size, max_length=config.max_length)
    depth = plan.depth
    model.freeze_blocks(plan.frozen_indices)
    _check_plan(plan, model)
    if config.lp_ft:  # the head is fitted to features made with the running statistics: keep them (Keras does too)
        model.batchnorm_inference = True
        model.train(model.training)
    model.to(device)
    if model.family == "vision":  # channels-last convolutions: ~1.5x faster on CPU (oneDNN) and on tensor cores
        model.to(memory_format=torch.channels_last)
    if model.family == "vision":
        memory.check_fits(model, image_size=config.image_size, batch_size=config.batch_size, device=device,
                          items=len(split.train) + len(split.val) + 2 * len(split.test),
                          trains_backbone=config.mode != "frozen")
    shift = shifts.shift_for(config.ood_shift, ds.kind)
    x_train, x_val = (_inputs(model, ds, idx, config, device) for idx in (split.train, split.val))
    y_train, y_val, y_test = (torch.as_tensor(ds.labels[idx], dtype=torch.long, device=device)
                              for idx in (split.train, split.val, split.test))
    return Prepared(config, ds, split, model, device, depth, x_train, y_train, x_val, y_val, y_test, shift, plan)


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


# ---- small helpers -------------------------------------------------------------------------
def _take(x, idx):
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


def _length(x) -> int:
    """Items in raw input (tensor, or tokens {input_ids, attention_mask}) or cached text {hidden, attention_mask}."""
    return len(x["attention_mask"]) if isinstance(x, dict) else len(x)


def _batches(x, size: int = EVAL_BATCH):
    for start in range(0, _length(x), size):
        yield _take(x, slice(start, start + size))


def _autocast(device: torch.device):
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _augment(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop (60-100% of the area, aspect 3/4-4/3) and horizontal flip, drawn from the run's generator."""
    from torchvision.transforms.v2 import functional as F

    h, w = images.shape[-2:]
    out = []
    for img in images:  # per image, so each gets its own crop
        u = torch.rand(4, generator=gen).tolist()
        area, ratio = h * w * (0.6 + 0.4 * u[0]), math.exp(math.log(3 / 4) + math.log(16 / 9) * u[1])
        ch, cw = min(h, round(math.sqrt(area / ratio))), min(w, round(math.sqrt(area * ratio)))
        top, left = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
        img = F.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
        out.append(img.flip(-1) if torch.rand(1, generator=gen).item() < 0.5 else img)
    return torch.stack(out)


class Stepper:
    """Turns raw inputs into logits for the current setting: cached suffix, or the whole model."""

    def __init__(self, prep: Prepared, cached: bool):
        self.model, self.prep, self.cached = prep.model, prep, cached
        self.gen = torch.Generator().manual_seed(prep.config.seed)

    def model_input(self, x, train: bool):
        if self.cached or self.model.family != "vision":
            return x
        if train and self.prep.config.augment:
            x = _augment(x, self.prep.config.image_size, self.gen)
        return self.model.vision_input(x)

    def set_train(self, mode: bool) -> None:
        """Only the part that runs each step changes mode; on pooled features that is just the head (no BN, no dropout)."""
        if not (self.cached and self.prep.depth == self.model.n_blocks):
            self.model.train(mode)

    def logits(self, x, train: bool) -> torch.Tensor:
        x = self.model_input(x, train)
        return self.model.suffix(x, self.prep.depth) if self.cached else self.model(x)

    @property
    def head_only(self) -> bool:
        """Pooled features cached: the run is a convex fit of the head alone."""
        return self.cached and self.prep.depth == self.model.n_blocks


def _cache_fits(prep: Prepared) -> bool:
    model = prep.model
    if prep.config.augment or not model.caches_at(prep.depth):
        return False
    if prep.depth == model.n_blocks:
        return True
    first = _take(prep.x_train, slice(0, 1))
    with torch.no_grad(), _autocast(prep.device):
        probe = model.boundary(model.vision_input(first) if model.family == "vision" else first, prep.depth)
    per_item = sum(t.numel() * t.element_size() for t in (probe.values() if isinstance(probe, dict) else [probe]))
    items = _length(prep.x_train) + _length(prep.x_val) + 2 * len(prep.y_test)
    return per_item * items <= CACHE_BUDGET_BYTES


@torch.no_grad()
def _boundary_activations(prep: Prepared, x) -> object:
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    for batch in _batches(x):
        if model.family == "vision":
            batch = model.vision_input(batch)
        with _autocast(prep.device):
            h = model.boundary(batch, prep.depth)
        out.append({"hidden": h["hidden"].float(), "attention_mask": h["attention_mask"]} if isinstance(h, dict)
                   else h.float())
    model.train(was_training)
    if isinstance(out[0], dict):  # text: hidden states entering the first trainable layer, with their mask
        return {k: torch.cat([o[k] for o in out]) for k in out[0]}
    return torch.cat(out)


_SHARED_NOTES = {"hit": "Frozen activations from the shared cache: no forward pass.",
                 "miss": "Frozen activations computed and stored in the shared cache for the next run."}


def _shared_activations(prep: Prepared) -> activation_cache.RunActivations | None:
    """The run's four parts (train, val, test, and test shifted) through the shared on-disk cache
    (tl_core.engine.activation_cache), keyed by everything that determines their boundary activations. None where
    the boundary is not one tensor per item (a text encoder cut inside: its suffix cache is in memory only)."""
    model, cfg = prep.model, prep.config
    if not (model.sequential or prep.depth == model.n_blocks):
        return None
    size = {"image_size": cfg.image_size} if model.family == "vision" else {"max_length": cfg.max_length}
    digests = activation_cache.prefix_digests(model, prep.depth)
    common = {"backbone": cfg.backbone, "preprocess": {**model.preprocess.to_dict(), **size},
              "data": prep.dataset.content_digest,
              "precision": f"{prep.device.type}:{getattr(_autocast(prep.device), 'fast_dtype', torch.float32)}"}
    items = {"train": prep.split.train, "val": prep.split.val, "test": prep.split.test, "ood": prep.split.test}

    def key(part: str, depth: int) -> str:
        return activation_cache.part_key(**common, weights=digests[depth], depth=depth,
                                         items=activation_cache.items_digest(items[part]),
                                         shift=prep.ood_shift if part == "ood" else "", shift_seed=cfg.seed)

    inputs = {"train": lambda: prep.x_train, "val": lambda: prep.x_val, "test": lambda: prep.x_test,
              "ood": lambda: prep.x_ood}

    def compute(part: str):
        """From the deepest shallower boundary already cached for these items (a freeze-depth sweep reuses every
        prefix it can: only the blocks between run), else from the inputs."""
        if model.family == "vision" and model.sequential:
            for start in range(prep.depth - 1, 0, -1):
                cached = activation_cache.read(key(part, start))
                if cached is not None:
                    activation_cache.count("prefix_reuses")
                    return _continue_activations(prep, cached.to(prep.device), start)
        return _boundary_activations(prep, inputs[part]())

    return activation_cache.RunActivations({part: key(part, prep.depth) for part in items}, compute, prep.device)


@torch.no_grad()
def _continue_activations(prep: Prepared, h: torch.Tensor, start: int) -> torch.Tensor:
    """Boundary activations at the run's depth from those at a shallower boundary `start`: blocks start..depth
    (and the pooling when the run's boundary is the pooled features), exactly as `_boundary_activations` runs them."""
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    for batch in _batches(h):
        with _autocast(prep.device):
            out.append((model.pooled(batch, start) if prep.depth == model.n_blocks
                        else model.run_blocks(batch, start, prep.depth)).float())
    model.train(was_training)
    return torch.cat(out)


def fill_shared_cache(config: TrainConfig, dataset: data.Dataset | None = None) -> str | None:
    """Compute now what a run of `config` will look up in the shared activation cache (a server's warm-up fills the
    classroom demo's entries), through the run's own steps: prepare, AdaBN where the recipe adapts, the same keys.
    Returns "hit" (already there), "miss" (computed and stored), "off", or None (such a run caches nothing)."""
    prep = prepare(config, dataset)
    if prep.plan.adapts_batchnorm:
        adapt_batchnorm(prep)
    cached = _cache_fits(prep)
    shared = _shared_activations(prep) if cached else None
    if shared is None or shared.status == "off":
        return shared and shared.status
    xs = shared.first(["train", "val"])
    if Stepper(prep, cached).head_only:  # the head's cross-validated regularisation: the first second of the run
        head_fit.choose_c(xs["train"], prep.y_train, len(prep.dataset.classes), seed=config.seed)
    return shared.status


@torch.no_grad()
def evaluate(stepper: Stepper, x, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
    losses, preds = [], []
    stepper.set_train(False)
    for start, batch in zip(range(0, len(y), EVAL_BATCH), _batches(x)):
        with _autocast(stepper.prep.device):
            logits = stepper.logits(batch, train=False).float()
        losses.append(nn.functional.cross_entropy(logits, y[start:start + EVAL_BATCH], reduction="sum").item())
        preds.append(logits.argmax(1).cpu())
    stepper.set_train(True)
    pred = torch.cat(preds).numpy()
    return sum(losses) / len(y), float((pred == y.cpu().numpy()).mean()), pred


def settle_batchnorm(stepper: Stepper, x_train) -> int:
    """Precise BatchNorm on (a seeded spread of) the training inputs, without augmentation."""
    n = _length(x_train)
    if n > precise_bn.MAX_ITEMS:
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(stepper.prep.config.seed))[:precise_bn.MAX_ITEMS]
        x_train = _take(x_train, pick.sort().values.to(stepper.prep.device))

    def forward(batch):
        with _autocast(stepper.prep.device):
            stepper.logits(batch, train=False)

    return precise_bn.recompute(stepper.model, _batches(x_train), forward)


def make_optimizer(prep: Prepared) -> torch.optim.Optimizer:
    """AdamW, one parameter group per block that may train, at the rate the plan gives it: pretrained blocks
    BACKBONE_LR_FACTOR x the head's (scratch trains all at one rate), or discriminative rates by depth.
    Each group names its block ("block"; the head is HEAD_NAME)."""
    lr = prep.config.effective_lr(prep.model.family)
    groups = []
    for block, params in sorted(prep.model.param_groups().items()):
        params = [p for p in params if p.requires_grad]
        if params:
            name = HEAD_NAME if block == -1 else prep.plan.blocks[block].name
            factor = 1.0 if block == -1 else prep.plan.blocks[block].lr_factor
            groups.append({"params": params, "lr": lr * factor, "block": name})
    # Not the fused kernel, though a step over MobileNetV2 takes 6 ms fused against 31 ms on a CPU core: its
    # rounding moved a 40-step from-scratch run (animals, seed 1) from a fair spread of predictions to 60% in
    # one class (tests/test_fairness.py); a baseline's numbers come before its speed.
    return torch.optim.AdamW(groups, weight_decay=1e-4)


def make_scheduler(prep: Prepared, opt: torch.optim.Optimizer, total_steps: int):
    """Cosine decay over the run; gradual unfreezing (ULMFiT) uses the slanted triangular rate instead."""
    if prep.plan.gradual:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: recipes.slanted_triangular(step, total_steps))
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def adapt_batchnorm(prep: Prepared) -> int:
    """AdaBN (Li et al. 2016): every BatchNorm layer's running statistics re-estimated on the training inputs
    (a seeded spread of at most precise_bn.MAX_ITEMS, no augmentation), no weight changed. Returns the layers."""
    model, x = prep.model, prep.x_train
    n = _length(x)
    if n > precise_bn.MAX_ITEMS:
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(prep.config.seed))[:precise_bn.MAX_ITEMS]
        x = _take(x, pick.sort().values.to(prep.device))

    def forward(batch):
        with _autocast(prep.device):
            model(model.vision_input(batch) if model.family == "vision" else batch)

    return precise_bn.recompute(model, _batches(x), forward, norms=precise_bn.all_batchnorms(model))


def planned_epochs(config: TrainConfig, steps_per_epoch: int) -> int:
    """--epochs, or for the "converge" budget enough epochs for CONVERGE_MIN_STEPS optimizer steps."""
    if config.effective_budget == "fixed":
        return config.epochs
    return max(config.epochs, min(CONVERGE_MAX_EPOCHS, math.ceil(CONVERGE_MIN_STEPS / steps_per_epoch)))


class _Selection:
    """Keeps the weights of the epoch with the best validation accuracy (ties: the lower validation loss)."""

    def __init__(self, model: nn.Module):
        self.model, self.epoch, self.key, self.state = model, 0, None, None
        self.tracked = self._tensors()  # fixed now: gradual unfreezing makes more of them train epoch by epoch

    def offer(self, epoch: int, val_acc: float, val_loss: float, source: dict[str, torch.Tensor] | None = None) -> None:
        """`source`: the same tensors of the model that was scored, where that is a copy (`_Evaluations`)."""
        key = (val_acc, -val_loss)
        if self.key is None or key > self.key:
            self.epoch, self.key = epoch, key
            self.state = {k: v.detach().clone() for k, v in (source or self.tracked).items()}

    def restore(self) -> None:
        if self.state is not None:
            with torch.no_grad():
                for k, v in self.tracked.items():
                    v.copy_(self.state[k])

    def _tensors(self) -> dict[str, torch.Tensor]:
        """What training changes: trainable parameters and the statistics of BatchNorm layers that train."""
        out = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        norms = set(precise_bn.trained_batchnorms(self.model))
        for name, module in self.model.named_modules():
            if module in norms:
                out.update({f"{name}.{b}": t for b, t in module.named_buffers(recurse=False)})
        return out


class _Evaluations:
    """The epoch-end evaluations of a trained network (precise BatchNorm, validation, the selection's offer), on a
    copy of the model and a second thread while the next epochs train.

    Nothing an evaluation does feeds back into training: BatchNorm in training mode normalises with each batch's
    own statistics, so re-estimating the running statistics and scoring validation only decide which epoch is
    kept. The copy gives the numbers an inline evaluation gives, and a run's wall time loses its evaluations
    wherever a core is free (a third of a from-scratch run on one thread). One evaluation is in flight at a time;
    the training thread reports the results, in epoch order. On a GPU, and for a fitted head, they run inline.
    """

    def __init__(self, prep: Prepared, stepper: Stepper, xs: dict, select: _Selection, result: RunResult, emit):
        self.prep, self.xs, self.select, self.result, self.emit = prep, xs, select, result, emit
        self.pending: list[tuple[tuple, Future]] = []  # (epoch, train loss, train acc, blocks), its scores
        self.pool, self.stepper, self.source = None, stepper, None
        if prep.device.type == "cpu":
            model = prep.model
            keep = {id(model.tokenizer): model.tokenizer} if model.tokenizer is not None else {}
            self.replica = copy.deepcopy(model, memo=keep)
            self.stepper = Stepper(dataclasses.replace(prep, model=self.replica), stepper.cached)
            tensors = {**dict(self.replica.named_parameters()), **dict(self.replica.named_buffers())}
            self.source = {k: tensors[k] for k in select.tracked}
            # flush-to-zero is a per-thread CPU flag: the evaluating thread must round as the training one does
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="tl-eval",
                                           initializer=torch.set_flush_denormal, initargs=(True,))

    def submit(self, epoch: int, train_loss: float, train_acc: float, t0: float,
               trainable_blocks: list[str] | None = None) -> None:
        """Score the model's weights as they are now, as `epoch`'s point of the curve."""
        if self.pool is None:
            future: Future = Future()
            future.set_result(self._score(epoch, t0))
        else:
            self.drain(wait=True)  # the copy is free again
            model = self.prep.model
            if self.replica.frozen_blocks != model.frozen_blocks:  # gradual unfreezing: the same BatchNorms settle
                self.replica.freeze_blocks(model.frozen_blocks)
            with torch.no_grad():
                for k, t in self.select.tracked.items():
                    self.source[k].copy_(t)
            future = self.pool.submit(self._score, epoch, t0)
        self.pending.append(((epoch, train_loss, train_acc, trainable_blocks), future))
        self.drain()

    def _score(self, epoch: int, t0: float) -> tuple[float, float, float]:
        settle_batchnorm(self.stepper, self.xs["train"])
        val_loss, val_acc, _ = evaluate(self.stepper, self.xs["val"], self.prep.y_val)
        self.select.offer(epoch, val_acc, val_loss, self.source)
        return val_loss, val_acc, time.perf_counter() - t0

    def drain(self, wait: bool = False) -> None:
        """Report every finished evaluation (all of them with `wait`), oldest first."""
        while self.pending and (wait or self.pending[0][1].done()):
            (epoch, train_loss, train_acc, blocks), future = self.pending.pop(0)
            val_loss, val_acc, seconds = future.result()
            row = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, seconds, trainable_blocks=blocks)
            self.result.history.append(row.row())
            self.emit(row)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


# ---- the run ---------------------------------------------------------------------------------
def fit(prep: Prepared, *, callbacks: list[EventHandler] = (), cancel: CancelToken | None = None,
        run_id: str | None = None) -> RunResult:
    """The training loop. Always ends with exactly one RunFinished event, whatever happens."""
    cfg, model = prep.config, prep.model
    cancel = cancel or CancelToken()
    run_id = run_id or uuid.uuid4().hex[:12]
    emit = _emitter(callbacks)
    result = RunResult(run_id, "failed", cfg.to_dict(), list(prep.dataset.classes))
    n_train = _length(prep.x_train)
    cached = _cache_fits(prep)
    stepper = Stepper(prep, cached)
    steps_per_epoch = 1 if stepper.head_only else math.ceil(n_train / cfg.batch_size)
    epochs = cfg.epochs if stepper.head_only else planned_epochs(cfg, steps_per_epoch)
    trainable, total = model.count_params()
    boundary = prep.plan.cache_boundary if cached else None
    start = time.perf_counter()
    try:
        emit(RunStarted(run_id, cfg.to_dict(), str(prep.device), result.classes, n_train, len(prep.y_val), epochs,
                        steps_per_epoch, trainable, total, boundary, n_test=len(prep.y_test)))
        xs = {"train": prep.x_train, "val": prep.x_val}
        if prep.plan.adapts_batchnorm:  # before any activation is cached: the features must see the new statistics
            emit(Message("AdaBN: re-estimating every BatchNorm layer's statistics on the training images…"))
            emit(Message(f"AdaBN: {adapt_batchnorm(prep)} BatchNorm layers adapted; no weight changed."))
        shared = _shared_activations(prep) if cached else None
        if cached:  # test and its shifted copy only at the end: the first curve point comes sooner
            emit(Message(f"Caching activations ({boundary}): the frozen blocks run once, not every epoch."))
            if shared is None:
                xs = {part: _boundary_activations(prep, x) for part, x in xs.items()}
            else:
                xs = shared.first(list(xs))
                if shared.status in _SHARED_NOTES:
                    emit(Message(_SHARED_NOTES[shared.status]))
        if epochs != cfg.epochs:
            emit(Message(f"Training to convergence: {epochs} epochs ({epochs * steps_per_epoch} optimizer steps, "
                         f"at least {CONVERGE_MIN_STEPS}) instead of {cfg.epochs}."))
        select = _Selection(model)
        extra = {}
        if stepper.head_only:
            extra = _fit_head(prep, stepper, xs, epochs, select, result, cancel, emit, start)
        else:
            if cfg.lp_ft:
                extra["lp_ft_probe_val_acc"] = _probe_head_first(prep, stepper, xs, cancel, emit)
            _fit_sgd(prep, stepper, xs, epochs, steps_per_epoch, select, result, cancel, emit, start)
        select.restore()
        stepper.set_train(False)
        x_test, x_ood = prep.x_test, prep.x_ood
        if shared is not None:
            x_test, x_ood = shared.later("test"), shared.later("ood")
        elif cached:
            x_test, x_ood = _boundary_activations(prep, x_test), _boundary_activations(prep, x_ood)
        _, test_acc, test_pred = evaluate(stepper, x_test, prep.y_test)
        _, ood_acc, _ = evaluate(stepper, x_ood, prep.y_test)
        final_val_acc = result.history[-1]["val_acc"]
        y_test = prep.y_test.cpu().numpy()
        findings = health.check(result.history, y_test, test_pred, len(result.classes), fitted_head=stepper.head_only,
                                converge_budget=cfg.effective_budget == "converge")
        for f in findings:
            what = "Finding" if f.get("result") else "Unhealthy run"
            emit(Message(f"{what}: {f['message']}. {f['advice'].capitalize()}.", level="warning"))
        result.status = "completed"
        result.summary = RunSummary(
            best_val_acc=select.key[0], final_val_acc=final_val_acc, selected_epoch=select.epoch,
            test_acc=test_acc, ood_acc=ood_acc, ood_shift=prep.ood_shift, health=findings, classes=result.classes,
            **classification_report(y_test, test_pred, result.classes),
            trainable_params=trainable, total_params=total, wall_s=time.perf_counter() - start,
            n_train=n_train, n_val=len(prep.y_val), n_test=len(prep.y_test), device=str(prep.device),
            threads=cfg.threads, deterministic=deterministic(prep.device),
            cached_boundary=boundary, freeze_depth=prep.depth, n_blocks=model.n_blocks,
            image_size=cfg.image_size, epochs_run=result.history[-1]["epoch"],
            evaluations=len(result.history), budget=cfg.effective_budget,
            head_solver="lbfgs" if stepper.head_only else "adamw",
            lr=None if stepper.head_only else cfg.effective_lr(model.family),
            activation_cache=shared.status if shared is not None else None, **extra,
        )
        if cfg.mode == "finetune" and cfg.pretrained and prep.depth < model.n_blocks:
            result.summary.block_similarity = _block_change(prep, emit)
        result.model = model
    except Cancelled:
        result.status = "cancelled"
        result.summary = RunSummary(wall_s=time.perf_counter() - start, epochs_done=len(result.history))
    except Exception as err:  # recorded, then re-raised for the caller to report
        result.status, result.error = "failed", failure_text(err)
        emit(RunFinished(run_id, "failed", RunSummary(), result.error))
        raise
    emit(RunFinished(run_id, result.status, result.summary, None))
    return result


def _end_epoch(prep, stepper, xs, epoch, train_loss, train_acc, t0, select, result, emit,
               trainable_blocks=None) -> None:
    """Settle BatchNorm, evaluate on validation, offer the weights to the selection, report the epoch."""
    settle_batchnorm(stepper, xs["train"])
    val_loss, val_acc, _ = evaluate(stepper, xs["val"], prep.y_val)
    select.offer(epoch, val_acc, val_loss)
    row = EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - t0,
                       trainable_blocks=trainable_blocks)
    result.history.append(row.row())
    emit(row)


def _fit_sgd(prep, stepper, xs, epochs, steps_per_epoch, select, result, cancel, emit, start) -> None:
    """Minibatch AdamW with cosine decay over every trainable block (gradual unfreezing: more blocks each epoch,
    slanted triangular rate); the epoch-end evaluations overlap the next epochs (`_Evaluations`)."""
    cfg, model, plan = prep.config, prep.model, prep.plan
    n_train, total_steps = _length(xs["train"]), steps_per_epoch * epochs
    opt = make_optimizer(prep)  # every block that will train has its group; a frozen one gets no gradient, no step
    sched = make_scheduler(prep, opt, total_steps)
    scaler = torch.amp.GradScaler(enabled=prep.device.type == "cuda" and not torch.cuda.is_bf16_supported())
    gen = torch.Generator().manual_seed(cfg.seed)
    global_step, loop_start = 0, time.perf_counter()  # the time left is extrapolated from training steps only
    every = math.ceil(epochs / MAX_EVALUATIONS)
    evaluations = _Evaluations(prep, stepper, xs, select, result, emit)
    model.train()
    try:
        for epoch in range(1, epochs + 1):
            t0, loss_sum, correct = time.perf_counter(), 0.0, 0
            if plan.gradual and model.freeze_depth != plan.depth_at(epoch):
                model.freeze_blocks(range(plan.depth_at(epoch)))
                emit(Message(f"Gradual unfreezing, epoch {epoch}: "
                             + (f"{', '.join(plan.trainable_at(epoch))} and the {HEAD_NAME} train."
                                if plan.trainable_at(epoch) else f"only the {HEAD_NAME} trains.")))
            order = torch.randperm(n_train, generator=gen).to(prep.device)
            for step in range(1, steps_per_epoch + 1):
                cancel.check()
                idx = order[(step - 1) * cfg.batch_size: step * cfg.batch_size]
                y = prep.y_train[idx]
                with _autocast(prep.device):
                    logits = stepper.logits(_take(xs["train"], idx), train=True)
                    loss = nn.functional.cross_entropy(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                global_step += 1
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                now = time.perf_counter()
                eta = (now - loop_start) / global_step * (total_steps - global_step)
                emit(StepProgress(epoch, step, steps_per_epoch, global_step, total_steps, loss.item(), now - start,
                                  eta))
                evaluations.drain()
            cancel.check()
            if epoch % every == 0 or epoch == epochs:
                evaluations.submit(epoch, loss_sum / n_train, correct / n_train, t0,
                                   trainable_blocks=plan.trainable_at(epoch) if plan.gradual else None)
        evaluations.drain(wait=True)
    finally:
        evaluations.close()


def _fit_head(prep, stepper, xs, epochs, select, result, cancel, emit, start) -> dict:
    """Feature extraction on cached pooled features: L-BFGS to convergence, L2 chosen by cross-validation on the
    training items (tl_core.engine.head_fit). Each epoch is a slice of the iterations, so the live curve still grows."""
    head, f_train, y_train = prep.model.get_head(), xs["train"], prep.y_train
    emit(Message(f"Choosing the head's regularisation by {head_fit.CV_FOLDS}-fold cross-validation on the "
                 "training items…"))
    c, cv_scores = head_fit.choose_c(f_train, y_train, len(result.classes), seed=prep.config.seed, check=cancel.check)
    fitter = head_fit.Fit(head, f_train, y_train, c, head_fit.iterations_per_epoch(epochs))
    loop_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        cancel.check()
        loss, acc = fitter.step()
        now = time.perf_counter()
        emit(StepProgress(epoch, 1, 1, epoch, epochs, loss, now - start, (now - loop_start) / epoch * (epochs - epoch)))
        _end_epoch(prep, stepper, xs, epoch, loss, acc, t0, select, result, emit)
    return {"head_c": c, "head_cv_acc": cv_scores.get(c)}


def _pooled_features(prep: Prepared, stepper: Stepper, x) -> torch.Tensor:
    """What the head sees, for every item, with the current backbone (eval mode, no augmentation)."""
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    start_block = prep.depth if stepper.cached else 0  # cached inputs are activations at the freeze boundary
    with torch.no_grad():
        for batch in _batches(x):
            with _autocast(prep.device):
                out.append(model.pooled(stepper.model_input(batch, train=False), start_block).float())
    model.train(was_training)
    return torch.cat(out)


def _probe_head_first(prep: Prepared, stepper: Stepper, xs: dict, cancel: CancelToken, emit) -> float:
    """LP-FT's first step: fit the new head on frozen features (the same convex fit as feature extraction), so
    fine-tuning starts from a head that already fits instead of pushing random-head gradients into the pretrained
    blocks. Returns its validation accuracy."""
    head = prep.model.get_head()
    emit(Message("LP-FT: training the new head on frozen features first…"))
    f_train, f_val = _pooled_features(prep, stepper, xs["train"]), _pooled_features(prep, stepper, xs["val"])
    c, _ = head_fit.choose_c(f_train, prep.y_train, head.out_features, seed=prep.config.seed,
                             grid=head_fit.LP_FT_GRID, check=cancel.check)
    head_fit.Fit(head, f_train, prep.y_train, c, head_fit.FIT_MAX_ITER).step()
    with torch.no_grad():
        acc = float((head(f_val).argmax(1) == prep.y_val).float().mean())
    emit(Message(f"LP-FT: the head alone reaches {acc:.0%} validation accuracy; now fine-tuning."))
    return acc


def _block_change(prep: Prepared, emit) -> dict | None:
    """How far each block moved from its pretrained start (linear CKA, see similarity.py).

    A measurement after training, outside `wall_s`; if it cannot be made the run still completes.
    """
    from tl_core.engine import similarity

    cfg = prep.config
    try:
        emit(Message("Measuring which blocks fine-tuning changed (CKA against the pretrained network)…"))
        reference = backbones.build(cfg.backbone, n_classes=len(prep.dataset.classes), pretrained=True, seed=cfg.seed,
                                    image_size=cfg.image_size, max_length=cfg.max_length).to(prep.device)
        if reference.family == "vision":
            reference.to(memory_format=torch.channels_last)
        n_val = _length(prep.x_val)
        spread = torch.linspace(0, n_val - 1, similarity.probe_count(prep.model, n_val)).long().to(prep.device)
        cka = similarity.block_similarity(reference, prep.model, _take(prep.x_val, spread), frozen=prep.depth)
    except Exception as err:  # e.g. the weights went missing: report it, keep the run
        emit(Message(f"Could not measure which blocks changed: {type(err).__name__}: {err}"))
        return None
    return {"blocks": prep.model.block_names, "cka": cka, "items": len(spread)}


def budget_text(config: TrainConfig) -> str:
    """One line for the app and the CLI: how long this run trains, and why."""
    return BUDGET_HELP[config.effective_budget].format(steps=CONVERGE_MIN_STEPS)


def _emitter(callbacks):
    """Every event to every callback. A callback that raises is reported as a Message to the others and
    removed: a broken chart or a full disk must not take the run down, and RunFinished still reaches the rest."""
    live = list(callbacks)

    def emit(event: Event) -> None:
        for cb in list(live):
            if cb not in live:
                continue
            try:
                cb(event)
            except Exception as err:  # noqa: BLE001 - any callback bug; the run goes on without that callback
                live.remove(cb)
                name = getattr(cb, "__qualname__", type(cb).__name__)
                note = Message(f"A progress callback ({name}) failed and was removed: {type(err).__name__}: {err}",
                               level="warning")
                for other in list(live):
                    try:
                        other(note)
                    except Exception:  # noqa: BLE001 - removed on the next event
                        pass
    return emit


def train(config: TrainConfig, *, dataset: data.Dataset | None = None, callbacks: list[EventHandler] = (),
          cancel: CancelToken | None = None, store=None, owner: str = "cli", run_id: str | None = None) -> RunResult:
    """prepare + fit, recording into `store` (a RunStore) when given."""
    prep = prepare(config, dataset)
    callbacks = list(callbacks)
    if store is not None:
        callbacks.insert(0, store.recorder(owner=owner, model=prep.model))
    return fit(prep, callbacks=callbacks, cancel=cancel, run_id=run_id)
