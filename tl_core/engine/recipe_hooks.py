"""The recipes that change what a run does, as hooks the loop calls at fixed moments (`run_state.RecipeHook`).

    before_fit        AdaBN re-estimates every BatchNorm layer's statistics on the training images
    before_training   LP-FT fits the new head on frozen features before fine-tuning starts
    before_epoch      gradual unfreezing sets which blocks train in this epoch

The loop itself (training.fit) knows no recipe. The recipes that only change settings are read elsewhere:
discriminative rates and surgical fine-tuning from the plan (which blocks train, at which rate) by
`optimization.make_optimizer`, and gradual unfreezing's slanted triangular rate by `optimization.make_scheduler`.
"""

from __future__ import annotations

import torch

from tl_core.engine import head_fit, precise_bn
from tl_core.engine.batching import autocast, batches, length, take
from tl_core.engine.plan import HEAD_NAME
from tl_core.engine.preparation import Prepared
from tl_core.engine.run_state import RecipeHook, RunState
from tl_core.engine.stepper import Stepper
from tl_core.events import Message


def for_run(prep: Prepared, stepper: Stepper) -> list[RecipeHook]:
    """The hooks of the run's recipe, in the order the loop calls them."""
    hooks: list[RecipeHook] = []
    if prep.plan.adapts_batchnorm:
        hooks.append(AdaptBatchNorm())
    if prep.config.lp_ft and not stepper.head_only:  # a fitted head needs no probe first: it is one
        hooks.append(LinearProbeFirst())
    if prep.plan.gradual:
        hooks.append(GradualUnfreezing())
    return hooks


class AdaptBatchNorm(RecipeHook):
    """AdaBN (Li et al. 2016): before any activation is cached, so the features see the new statistics."""

    def before_fit(self, run: RunState) -> None:
        run.emit(Message("AdaBN: re-estimating every BatchNorm layer's statistics on the training images…"))
        run.emit(Message(f"AdaBN: {adapt_batchnorm(run.prep)} BatchNorm layers adapted; no weight changed."))


class LinearProbeFirst(RecipeHook):
    """LP-FT (Kumar et al. 2022): fit the new head on frozen features (the same convex fit as feature extraction),
    so fine-tuning starts from a head that already fits instead of pushing random-head gradients into the
    pretrained blocks. Its validation accuracy goes into the summary."""

    def before_training(self, run: RunState) -> None:
        prep = run.prep
        head = prep.model.get_head()
        run.emit(Message("LP-FT: training the new head on frozen features first…"))
        f_train = pooled_features(prep, run.stepper, run.xs["train"])
        f_val = pooled_features(prep, run.stepper, run.xs["val"])
        c, _ = head_fit.choose_c(f_train, prep.y_train, head.out_features, seed=prep.config.seed,
                                 grid=head_fit.LP_FT_GRID, check=run.cancel.check)
        head_fit.Fit(head, f_train, prep.y_train, c, head_fit.FIT_MAX_ITER).step()
        with torch.no_grad():
            acc = float((head(f_val).argmax(1) == prep.y_val).float().mean())
        run.emit(Message(f"LP-FT: the head alone reaches {acc:.0%} validation accuracy; now fine-tuning."))
        run.extras["lp_ft_probe_val_acc"] = acc


class GradualUnfreezing(RecipeHook):
    """ULMFiT (Howard & Ruder 2018): the head alone in the first epoch, one more block from the top each epoch
    after; the blocks that train are kept with each point of the curve."""

    def before_epoch(self, run: RunState, epoch: int) -> None:
        model, plan = run.prep.model, run.prep.plan
        if model.freeze_depth != plan.depth_at(epoch):
            model.freeze_blocks(range(plan.depth_at(epoch)))
            run.emit(Message(f"Gradual unfreezing, epoch {epoch}: "
                             + (f"{', '.join(plan.trainable_at(epoch))} and the {HEAD_NAME} train."
                                if plan.trainable_at(epoch) else f"only the {HEAD_NAME} trains.")))
        run.trainable_blocks = plan.trainable_at(epoch)


def adapt_batchnorm(prep: Prepared) -> int:
    """AdaBN (Li et al. 2016): every BatchNorm layer's running statistics re-estimated on the training inputs
    (a seeded spread of at most precise_bn.MAX_ITEMS, no augmentation), no weight changed. Returns the layers."""
    model, x = prep.model, prep.x_train
    n = length(x)
    if n > precise_bn.MAX_ITEMS:
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(prep.config.seed))[:precise_bn.MAX_ITEMS]
        x = take(x, pick.sort().values.to(prep.device))

    def forward(batch):
        with autocast(prep.device):
            model(model.vision_input(batch) if model.family == "vision" else batch)

    return precise_bn.recompute(model, batches(x), forward, norms=precise_bn.all_batchnorms(model))


def pooled_features(prep: Prepared, stepper: Stepper, x) -> torch.Tensor:
    """What the head sees, for every item, with the current backbone (eval mode, no augmentation)."""
    model, out = prep.model, []
    was_training = model.training
    model.eval()
    start_block = prep.depth if stepper.cached else 0  # cached inputs are activations at the freeze boundary
    with torch.no_grad():
        for batch in batches(x):
            with autocast(prep.device):
                out.append(model.pooled(stepper.model_input(batch, train=False), start_block).float())
    model.train(was_training)
    return torch.cat(out)
