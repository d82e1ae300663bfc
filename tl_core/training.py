"""Train one run: the loop reads on one screen, everything else is a callback.

Speed by design: when nothing before the freeze boundary can change (no
augmentation), the boundary activations are computed once and every epoch
runs only the trainable suffix. A frozen run is then one forward pass plus a
tiny head; a depth-K fine-tune skips the frozen prefix entirely.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import backbones, data
from .config import BACKBONE_LR_FACTOR, DEFAULT_LR, TrainConfig
from .device import configure_cpu_threads, pick_device
from .events import (CancelToken, Cancelled, EpochMetrics, Event, EventHandler, Message, RunFinished, RunStarted,
                     StepProgress)
from .metrics import classification_report

CACHE_BUDGET_BYTES = 3 * 2**30  # above this the boundary activations are recomputed each step instead
EVAL_BATCH = 64  # measured on 2 CPU cores: 64 images at a time beat 128 by 1.5-2x (cache-sized activations)


class ConfigError(ValueError):
    """A setting that does not fit the chosen data or backbone; the message says which and what to do."""


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


@dataclass
class RunResult:
    run_id: str
    status: str
    config: dict
    classes: list[str]
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    error: str | None = None
    model: nn.Module | None = None


# ---- preparation ---------------------------------------------------------------------
def default_image_size(spec: backbones.BackboneSpec, ds: data.Dataset) -> int:
    if spec.fixed_image_size:
        return spec.fixed_image_size
    native = ds.images.shape[1] if isinstance(ds.images, np.ndarray) else None
    size = 64 if native is not None and native <= 64 else spec.default_image_size
    return max(size, spec.min_image_size)


def resolve_depth(config: TrainConfig, n_blocks: int) -> int:
    if config.mode == "frozen":
        return n_blocks
    if config.mode == "scratch":
        return 0
    depth = config.freeze_depth or 0
    if depth > n_blocks:
        raise ConfigError(f"--freeze-depth {depth} is out of range for {config.backbone}: use 0..{n_blocks}")
    return depth


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
    split = data.make_split(ds, val_per_class=config.val_per_class, labels_per_class=config.labels_per_class,
                            seed=config.seed)
    device = pick_device(config.device)
    if device.type == "cpu":
        configure_cpu_threads()
    if spec.family == "vision":
        config.image_size = backbones.check_image_size(spec, config.image_size or default_image_size(spec, ds))
    model = backbones.build(config.backbone, n_classes=len(ds.classes), pretrained=config.pretrained and config.mode != "scratch",
                            seed=config.seed, image_size=config.image_size, max_length=config.max_length)
    depth = resolve_depth(config, model.n_blocks)
    model.freeze(depth)
    if config.lp_ft:  # the head is fitted to features made with the running statistics: keep them (Keras does too)
        model.batchnorm_inference = True
        model.train(model.training)
    model.to(device)
    if model.family == "vision":  # channels-last convolutions: ~1.5x faster on CPU (oneDNN) and on tensor cores
        model.to(memory_format=torch.channels_last)
    x_train, x_val = (_inputs(model, ds, idx, config, device) for idx in (split.train, split.val))
    y_train, y_val = (torch.as_tensor(ds.labels[idx], dtype=torch.long, device=device) for idx in (split.train, split.val))
    return Prepared(config, ds, split, model, device, depth, x_train, y_train, x_val, y_val)


def _inputs(model, ds: data.Dataset, idx: np.ndarray, config: TrainConfig, device: torch.device):
    """Decoded once: uint8 images (normalised per batch) or token ids."""
    if model.family == "vision":
        return ds.image_batch(idx, config.image_size).to(device)
    texts = [ds.texts[i] for i in idx]
    enc = model.tokenizer(texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}


# ---- small helpers -------------------------------------------------------------------------
def _take(x, idx):
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


def _length(x) -> int:
    return len(x["input_ids"]) if isinstance(x, dict) else len(x)


def vision_input(model, images_uint8: torch.Tensor) -> torch.Tensor:
    """Normalised and in the memory layout `prepare` gave the network."""
    return model.normalize(images_uint8).contiguous(memory_format=torch.channels_last)


def _autocast(device: torch.device):
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _augment(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    from torchvision.transforms import v2

    crop = v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True)
    out = []
    for img in images:  # per image, so each gets its own crop
        img = crop(img)
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
        return vision_input(self.model, x)

    def set_train(self, mode: bool) -> None:
        """Only the part that runs each step changes mode; on pooled features that is just the head (no BN, no dropout)."""
        if not (self.cached and self.prep.depth == self.model.n_blocks):
            self.model.train(mode)

    def logits(self, x, train: bool) -> torch.Tensor:
        x = self.model_input(x, train)
        return self.model.suffix(x, self.prep.depth) if self.cached else self.model(x)


def _cache_fits(prep: Prepared) -> bool:
    model = prep.model
    if prep.config.augment or prep.depth == 0 or (not model.sequential and prep.depth < model.n_blocks):
        return False
    if prep.depth == model.n_blocks:
        return True
    with torch.no_grad(), _autocast(prep.device):
        probe = model.boundary(vision_input(model, prep.x_train[:1]), prep.depth)
    total = probe.numel() * probe.element_size() * (_length(prep.x_train) + _length(prep.x_val))
    return total <= CACHE_BUDGET_BYTES


@torch.no_grad()
def _boundary_activations(prep: Prepared, x) -> object:
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    for start in range(0, _length(x), EVAL_BATCH):
        batch = _take(x, slice(start, start + EVAL_BATCH))
        if model.family == "vision":
            batch = vision_input(model, batch)
        with _autocast(prep.device):
            out.append(model.boundary(batch, prep.depth).float())
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def evaluate(stepper: Stepper, x, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
    losses, preds = [], []
    stepper.set_train(False)
    for start in range(0, len(y), EVAL_BATCH):
        with _autocast(stepper.prep.device):
            logits = stepper.logits(_take(x, slice(start, start + EVAL_BATCH)), train=False).float()
        losses.append(nn.functional.cross_entropy(logits, y[start:start + EVAL_BATCH], reduction="sum").item())
        preds.append(logits.argmax(1).cpu())
    stepper.set_train(True)
    pred = torch.cat(preds).numpy()
    return sum(losses) / len(y), float((pred == y.cpu().numpy()).mean()), pred


def make_optimizer(prep: Prepared) -> torch.optim.Optimizer:
    """AdamW; pretrained blocks get BACKBONE_LR_FACTOR x the head's rate (scratch trains all at one rate)."""
    lr = prep.config.effective_lr
    backbone_lr = lr if prep.config.mode == "scratch" else lr * BACKBONE_LR_FACTOR
    groups = []
    for block, params in prep.model.param_groups().items():
        params = [p for p in params if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr if block == -1 else backbone_lr})
    return torch.optim.AdamW(groups, weight_decay=1e-4)


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
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    trainable, total = model.count_params()
    cached = _cache_fits(prep)
    boundary = (None if not cached else "pooled features" if prep.depth == model.n_blocks
                else f"after {model.block_names[prep.depth - 1]}")
    start = time.perf_counter()
    try:
        emit(RunStarted(run_id, cfg.to_dict(), str(prep.device), result.classes, n_train, len(prep.y_val), cfg.epochs,
                        steps_per_epoch, trainable, total, boundary))
        x_train, x_val = prep.x_train, prep.x_val
        if cached:
            emit(Message(f"Caching activations ({boundary}): the frozen blocks run once, not every epoch."))
            x_train, x_val = _boundary_activations(prep, x_train), _boundary_activations(prep, x_val)
        stepper = Stepper(prep, cached)
        probe_acc = _probe_head_first(prep, stepper, x_train, x_val, cancel, emit) if cfg.lp_ft else None
        opt = make_optimizer(prep)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
        scaler = torch.amp.GradScaler(enabled=prep.device.type == "cuda" and not torch.cuda.is_bf16_supported())
        gen = torch.Generator().manual_seed(cfg.seed)
        best, global_step = 0.0, 0
        loop_start = time.perf_counter()  # the time left is extrapolated from training steps, not the caching pass
        model.train()
        for epoch in range(1, cfg.epochs + 1):
            t0, loss_sum, correct = time.perf_counter(), 0.0, 0
            order = torch.randperm(n_train, generator=gen).to(prep.device)
            for step in range(1, steps_per_epoch + 1):
                cancel.check()
                idx = order[(step - 1) * cfg.batch_size: step * cfg.batch_size]
                y = prep.y_train[idx]
                with _autocast(prep.device):
                    logits = stepper.logits(_take(x_train, idx), train=True)
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
                emit(StepProgress(epoch, step, steps_per_epoch, global_step, total_steps, loss.item(), now - start, eta))
            cancel.check()
            val_loss, val_acc, pred = evaluate(stepper, x_val, prep.y_val)
            best = max(best, val_acc)
            row = EpochMetrics(epoch, loss_sum / n_train, correct / n_train, val_loss, val_acc, time.perf_counter() - t0)
            result.history.append({k: v for k, v in row.__dict__.items() if k != "kind"})
            emit(row)
        result.status = "completed"
        result.summary = {
            "best_val_acc": best, "final_val_acc": val_acc, "classes": result.classes,
            **classification_report(prep.y_val.cpu().numpy(), pred, result.classes),
            "trainable_params": trainable, "total_params": total, "wall_s": time.perf_counter() - start,
            "n_train": n_train, "n_val": len(prep.y_val), "device": str(prep.device), "cached_boundary": boundary,
            "freeze_depth": prep.depth, "n_blocks": model.n_blocks, "image_size": cfg.image_size,
        }
        if probe_acc is not None:
            result.summary["lp_ft_probe_val_acc"] = probe_acc
        if cfg.mode == "finetune" and cfg.pretrained:
            result.summary["block_similarity"] = _block_change(prep, emit)
        result.model = model
    except Cancelled:
        result.status = "cancelled"
        result.summary = {"wall_s": time.perf_counter() - start, "epochs_done": len(result.history)}
    except Exception as err:  # recorded, then re-raised for the caller to report
        result.status, result.error = "failed", f"{type(err).__name__}: {err}"
        emit(RunFinished(run_id, "failed", {}, result.error))
        raise
    emit(RunFinished(run_id, result.status, result.summary, None))
    return result


LP_FT_HEAD_EPOCHS = 10  # on pooled features an epoch costs almost nothing


@torch.no_grad()
def _pooled_features(prep: Prepared, stepper: Stepper, x) -> torch.Tensor:
    """What the head sees, for every item, with the current backbone (eval mode, no augmentation)."""
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    start_block = prep.depth if stepper.cached else 0  # cached inputs are activations at the freeze boundary
    for start in range(0, _length(x), EVAL_BATCH):
        batch = stepper.model_input(_take(x, slice(start, start + EVAL_BATCH)), train=False)
        with _autocast(prep.device):
            out.append(model.pooled(batch, start_block).float())
    model.train(was_training)
    return torch.cat(out)


def _probe_head_first(prep: Prepared, stepper: Stepper, x_train, x_val, cancel: CancelToken, emit) -> float:
    """LP-FT's first step: fit the new head on frozen features, so fine-tuning starts from a head that
    already fits instead of pushing random-head gradients into the pretrained blocks. Returns its val accuracy."""
    cfg, head = prep.config, prep.model.get_head()
    emit(Message(f"LP-FT: training the new head on frozen features for {LP_FT_HEAD_EPOCHS} epochs first…"))
    f_train, f_val = _pooled_features(prep, stepper, x_train), _pooled_features(prep, stepper, x_val)
    steps = math.ceil(len(f_train) / cfg.batch_size)
    opt = torch.optim.AdamW(head.parameters(), lr=DEFAULT_LR["frozen"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * LP_FT_HEAD_EPOCHS)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(LP_FT_HEAD_EPOCHS):
        order = torch.randperm(len(f_train), generator=gen).to(prep.device)
        for step in range(steps):
            cancel.check()
            idx = order[step * cfg.batch_size: (step + 1) * cfg.batch_size]
            loss = nn.functional.cross_entropy(head(f_train[idx]), prep.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        acc = float((head(f_val).argmax(1) == prep.y_val).float().mean())
    emit(Message(f"LP-FT: the head alone reaches {acc:.0%} validation accuracy; now fine-tuning."))
    return acc


def _block_change(prep: Prepared, emit) -> dict | None:
    """How far each block moved from its pretrained start (linear CKA, see similarity.py).

    A measurement after training, outside `wall_s`; if it cannot be made the run still completes.
    """
    from . import similarity

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


def _emitter(callbacks):
    def emit(event: Event) -> None:
        for cb in callbacks:
            cb(event)
    return emit


def train(config: TrainConfig, *, dataset: data.Dataset | None = None, callbacks: list[EventHandler] = (),
          cancel: CancelToken | None = None, store=None, owner: str = "cli", run_id: str | None = None) -> RunResult:
    """prepare + fit, recording into `store` (a RunStore) when given."""
    prep = prepare(config, dataset)
    callbacks = list(callbacks)
    if store is not None:
        callbacks.insert(0, store.recorder(owner=owner, model=prep.model))
    return fit(prep, callbacks=callbacks, cancel=cancel, run_id=run_id)
