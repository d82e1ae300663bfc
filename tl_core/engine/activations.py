"""The frozen prefix runs once: a run's inputs as the activations at its freeze boundary.

When nothing before the boundary can change (no augmentation), every epoch would push the same items through the
same frozen blocks. So the run computes their activations once, in memory or through the shared on-disk cache
(tl_core.engine.activation_cache, which other runs on this machine fill too), and trains only the suffix. A
frozen run is then one forward pass plus a small convex fit; a depth-K fine-tune skips the frozen prefix.
"""

from __future__ import annotations

import torch

from tl_core.config import TrainConfig
from tl_core.engine import activation_cache, head_fit
from tl_core.engine.batching import autocast, batches, length, take
from tl_core.engine.preparation import Prepared, prepare
from tl_core.engine.recipe_hooks import adapt_batchnorm
from tl_core.engine.run_state import RunState
from tl_core.engine.stepper import Stepper
from tl_core.events import Message
from tl_core.inputs import data

CACHE_BUDGET_BYTES = 3 * 2**30  # above this the boundary activations are recomputed each step instead
SHARED_NOTES = {"hit": "Frozen activations from the shared cache: no forward pass.",
                "miss": "Frozen activations computed and stored in the shared cache for the next run."}


def cache_fits(prep: Prepared) -> bool:
    """Can this run cache its boundary activations: no augmentation, a boundary the model can cut at, and the
    activations of every item within CACHE_BUDGET_BYTES."""
    model = prep.model
    if prep.config.augment or not model.caches_at(prep.depth):
        return False
    if prep.depth == model.n_blocks:
        return True
    first = take(prep.x_train, slice(0, 1))
    with torch.no_grad(), autocast(prep.device):
        probe = model.boundary(model.vision_input(first) if model.family == "vision" else first, prep.depth)
    per_item = sum(t.numel() * t.element_size() for t in (probe.values() if isinstance(probe, dict) else [probe]))
    items = length(prep.x_train) + length(prep.x_val) + 2 * len(prep.y_test)
    return per_item * items <= CACHE_BUDGET_BYTES


def training_inputs(run: RunState) -> None:
    """Set `run.xs` (train and validation): the raw inputs, or where the run caches, their boundary activations
    (test and its shifted copy only at the end: the first curve point comes sooner)."""
    prep = run.prep
    run.xs = {"train": prep.x_train, "val": prep.x_val}
    if not run.stepper.cached:
        return
    run.shared = shared_activations(prep)
    run.emit(Message(f"Caching activations ({prep.plan.cache_boundary}): the frozen blocks run once, not every "
                     "epoch."))
    if run.shared is None:
        run.xs = {part: boundary_activations(prep, x) for part, x in run.xs.items()}
        return
    run.xs = run.shared.first(list(run.xs))
    if run.shared.status in SHARED_NOTES:
        run.emit(Message(SHARED_NOTES[run.shared.status]))


def held_out_inputs(run: RunState) -> tuple[object, object]:
    """The test items and their shifted copy, in the form the run trained on."""
    prep = run.prep
    if run.shared is not None:
        return run.shared.later("test"), run.shared.later("ood")
    if run.stepper.cached:
        return boundary_activations(prep, prep.x_test), boundary_activations(prep, prep.x_ood)
    return prep.x_test, prep.x_ood


@torch.no_grad()
def boundary_activations(prep: Prepared, x) -> object:
    """The activations entering the first trainable block (the pooled features for a frozen run), in eval mode."""
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    for batch in batches(x):
        if model.family == "vision":
            batch = model.vision_input(batch)
        with autocast(prep.device):
            h = model.boundary(batch, prep.depth)
        out.append({"hidden": h["hidden"].float(), "attention_mask": h["attention_mask"]} if isinstance(h, dict)
                   else h.float())
    model.train(was_training)
    if isinstance(out[0], dict):  # text: hidden states entering the first trainable layer, with their mask
        return {k: torch.cat([o[k] for o in out]) for k in out[0]}
    return torch.cat(out)


def shared_activations(prep: Prepared) -> activation_cache.RunActivations | None:
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
              "precision": f"{prep.device.type}:{getattr(autocast(prep.device), 'fast_dtype', torch.float32)}"}
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
                    return continue_activations(prep, cached.to(prep.device), start)
        return boundary_activations(prep, inputs[part]())

    return activation_cache.RunActivations({part: key(part, prep.depth) for part in items}, compute, prep.device)


@torch.no_grad()
def continue_activations(prep: Prepared, h: torch.Tensor, start: int) -> torch.Tensor:
    """Boundary activations at the run's depth from those at a shallower boundary `start`: blocks start..depth
    (and the pooling when the run's boundary is the pooled features), exactly as `boundary_activations` runs them."""
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    for batch in batches(h):
        with autocast(prep.device):
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
    cached = cache_fits(prep)
    shared = shared_activations(prep) if cached else None
    if shared is None or shared.status == "off":
        return shared and shared.status
    xs = shared.first(["train", "val"])
    if Stepper(prep, cached).head_only:  # the head's cross-validated regularisation: the first second of the run
        head_fit.choose_c(xs["train"], prep.y_train, len(prep.dataset.classes), seed=config.seed)
    return shared.status
