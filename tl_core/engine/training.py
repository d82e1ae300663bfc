"""Train one run: the loop reads on one screen; progress goes out as events, recipes come in as hooks.

`fit` runs one `RunState` through fixed stages: announce the run, let the recipes act before anything is computed
(AdaBN), cache what the frozen prefix computes, let the recipes act before the first epoch (LP-FT), train (a
fitted head, or minibatch AdamW with the recipes acting before each epoch: gradual unfreezing), restore the epoch
chosen on validation, and score it on test. Each job lives in its own module:

    preparation.py    the split, the plan, the model and the decoded inputs (`prepare`)
    activations.py    the frozen prefix computed once: boundary activations and the shared on-disk cache
    stepper.py        a batch of inputs to logits, cached suffix or whole model, augmented or not
    evaluation.py     precise BatchNorm, then validation or test; the epoch-end evaluations beside training
    selection.py      the epoch kept: best validation accuracy
    optimization.py   the optimizer's groups and rates, the schedule, the epoch budget
    recipe_hooks.py   the recipes that change what the run does (AdaBN, LP-FT, gradual unfreezing)
    run_state.py      the state the stages share, and the result

Fair by design: the epoch is chosen on validation and the run reports its accuracy on a separate test split (and on
a shifted copy of it); BatchNorm statistics are re-estimated before every evaluation; a from-scratch baseline gets
its own learning rate and a minimum number of steps; and every run is checked for the failures that look like
results (one class predicted, stuck at chance).
"""

from __future__ import annotations

import math
import time
import uuid

import torch
from torch import nn

from tl_core.config import CONVERGE_MIN_STEPS, TrainConfig
from tl_core.device import deterministic
from tl_core.engine import activations, evaluation, head_fit, health, optimization, recipe_hooks
from tl_core.engine.batching import autocast, length, take
from tl_core.engine.metrics import classification_report
from tl_core.engine.preparation import Prepared, prepare
from tl_core.engine.run_state import RunResult, RunState
from tl_core.engine.selection import Selection
from tl_core.engine.stepper import Stepper
from tl_core.errors import failure_text
from tl_core.events import (CancelToken, Cancelled, EventHandler, Message, RunFinished, RunStarted, StepProgress,
                            emitter)
from tl_core.inputs import data
from tl_core.models import backbones
from tl_core.records import RunSummary

# The names the app, the benches, ranking, probe and the tests import from this module.
from tl_core.engine.activations import (  # noqa: F401
    boundary_activations as _boundary_activations, cache_fits as _cache_fits, fill_shared_cache,
    shared_activations as _shared_activations)
from tl_core.engine.batching import (  # noqa: F401
    EVAL_BATCH, autocast as _autocast, batches as _batches, length as _length)
from tl_core.engine.evaluation import evaluate  # noqa: F401
from tl_core.engine.optimization import budget_text  # noqa: F401
from tl_core.engine.planning import default_image_size, plan_for, resolve  # noqa: F401
from tl_core.errors import ConfigError  # noqa: F401
from tl_core.events import emitter as _emitter  # noqa: F401

#: Long runs (a from-scratch baseline on a few labels trains for a hundred short epochs) are evaluated about this
#: many times: each evaluation re-estimates BatchNorm and scores validation, which would otherwise cost more than
#: the training itself. The curve keeps this many points; the selection picks among them.
MAX_EVALUATIONS = 30


def train(config: TrainConfig, *, dataset: data.Dataset | None = None, callbacks: list[EventHandler] = (),
          cancel: CancelToken | None = None, store=None, owner: str = "cli", run_id: str | None = None,
          plan=None) -> RunResult:
    """prepare + fit, recording into `store` (a RunStore) when given; `plan`: the one made before Start."""
    prep = prepare(config, dataset, plan)
    callbacks = list(callbacks)
    if store is not None:
        callbacks.insert(0, store.recorder(owner=owner, model=prep.model))
    return fit(prep, callbacks=callbacks, cancel=cancel, run_id=run_id)


def fit(prep: Prepared, *, callbacks: list[EventHandler] = (), cancel: CancelToken | None = None,
        run_id: str | None = None) -> RunResult:
    """The training loop. Always ends with exactly one RunFinished event, whatever happens."""
    run = _new_run(prep, callbacks, cancel, run_id)
    result = run.result
    try:
        run.emit(_started(run))
        run.before_fit()
        activations.training_inputs(run)
        if run.epochs != prep.config.epochs:
            run.emit(Message(f"Training to convergence: {run.epochs} epochs ({run.epochs * run.steps_per_epoch} "
                             f"optimizer steps, at least {CONVERGE_MIN_STEPS}) instead of {prep.config.epochs}."))
        run.before_training()
        if run.stepper.head_only:
            _fit_head(run)
        else:
            _fit_sgd(run)
        run.select.restore()
        run.stepper.set_train(False)
        _score_and_summarise(run)
    except Cancelled:
        result.status = "cancelled"
        result.summary = RunSummary(wall_s=time.perf_counter() - run.start, epochs_done=run.epochs_done)
    except Exception as err:  # recorded, then re-raised for the caller to report
        result.status, result.error = "failed", failure_text(err)
        run.emit(RunFinished(result.run_id, "failed", RunSummary(), result.error))
        raise
    run.emit(RunFinished(result.run_id, result.status, result.summary, None))
    return result


def _new_run(prep: Prepared, callbacks, cancel: CancelToken | None, run_id: str | None) -> RunState:
    """The run's state before anything trains: how its inputs are fed, how long it trains, its recipe's hooks."""
    cfg = prep.config
    stepper, plan = Stepper(prep, activations.cache_fits(prep)), prep.plan
    if stepper.head_only != plan.fits_head:  # the plan said how long the run trains; it must train that way
        raise AssertionError(f"the plan {'fits' if plan.fits_head else 'does not fit'} the head alone, the run "
                             f"{'does' if stepper.head_only else 'does not'}")
    result = RunResult(run_id or uuid.uuid4().hex[:12], "failed", cfg.to_dict(), list(prep.dataset.classes))
    return RunState(prep, stepper, result, Selection(prep.model), emitter(callbacks), cancel or CancelToken(),
                    plan.epochs, plan.steps_per_epoch, hooks=recipe_hooks.for_run(prep, stepper))


def _started(run: RunState) -> RunStarted:
    """The run's first event: what trains (the plan, kept with the run record), on what, for how many steps."""
    prep = run.prep
    return RunStarted(run.result.run_id, prep.config.to_dict(), str(prep.device), run.result.classes,
                      length(prep.x_train), len(prep.y_val), run.epochs, run.steps_per_epoch,
                      prep.plan.trainable_params, prep.plan.total_params, run.cached_boundary, n_test=len(prep.y_test),
                      plan=prep.plan.to_dict())


def _fit_head(run: RunState) -> None:
    """Feature extraction on cached pooled features: L-BFGS to convergence, L2 chosen by cross-validation on the
    training items (tl_core.engine.head_fit). Each epoch is a slice of the iterations, so the live curve still grows."""
    prep, f_train = run.prep, run.xs["train"]
    run.emit(Message(f"Choosing the head's regularisation by {head_fit.CV_FOLDS}-fold cross-validation on the "
                     "training items…"))
    c, cv_scores = head_fit.choose_c(f_train, prep.y_train, len(run.result.classes), seed=prep.config.seed,
                                     check=run.cancel.check)
    run.extras.update(head_c=c, head_cv_acc=cv_scores.get(c))
    fitter = head_fit.Fit(prep.model.get_head(), f_train, prep.y_train, c, head_fit.iterations_per_epoch(run.epochs))
    evaluations = evaluation.Evaluations(run, inline=True)
    loop_start = time.perf_counter()
    for epoch in range(1, run.epochs + 1):
        t0 = time.perf_counter()
        run.cancel.check()
        run.before_epoch(epoch)
        loss, acc = fitter.step()
        run.epochs_done = epoch
        now = time.perf_counter()
        eta = (now - loop_start) / epoch * (run.epochs - epoch)
        run.emit(StepProgress(epoch, 1, 1, epoch, run.epochs, loss, now - run.start, eta))
        evaluations.submit(epoch, loss, acc, t0)


def _fit_sgd(run: RunState) -> None:
    """Minibatch AdamW over every trainable block, at the plan's rates and schedule (tl_core.engine.optimization);
    the epoch-end evaluations overlap the next epochs (`evaluation.Evaluations`)."""
    prep, cfg, xs = run.prep, run.prep.config, run.xs
    n_train, total_steps = length(xs["train"]), run.steps_per_epoch * run.epochs
    opt = optimization.make_optimizer(prep)  # every block that will train has its group; a frozen one gets no step
    sched = optimization.make_scheduler(prep, opt, total_steps)
    scaler = torch.amp.GradScaler(enabled=prep.device.type == "cuda" and not torch.cuda.is_bf16_supported())
    gen = torch.Generator().manual_seed(cfg.seed)
    global_step, loop_start = 0, time.perf_counter()  # the time left is extrapolated from training steps only
    every = math.ceil(run.epochs / MAX_EVALUATIONS)
    evaluations = evaluation.Evaluations(run, inline=prep.device.type != "cpu")
    prep.model.train()
    try:
        for epoch in range(1, run.epochs + 1):
            t0, loss_sum, correct = time.perf_counter(), 0.0, 0
            run.before_epoch(epoch)
            order = torch.randperm(n_train, generator=gen).to(prep.device)
            for step in range(1, run.steps_per_epoch + 1):
                run.cancel.check()
                idx = order[(step - 1) * cfg.batch_size: step * cfg.batch_size]
                y = prep.y_train[idx]
                with autocast(prep.device):
                    logits = run.stepper.logits(take(xs["train"], idx), train=True)
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
                run.emit(StepProgress(epoch, step, run.steps_per_epoch, global_step, total_steps, loss.item(),
                                      now - run.start, eta))
                evaluations.drain()
            run.epochs_done = epoch
            run.cancel.check()
            if epoch % every == 0 or epoch == run.epochs:
                evaluations.submit(epoch, loss_sum / n_train, correct / n_train, t0)
        evaluations.drain(wait=True)
    finally:
        evaluations.close()


def _score_and_summarise(run: RunState) -> None:
    """The kept epoch scored on test and on its shifted copy, checked for unhealthy results, summarised."""
    prep, cfg, model, result = run.prep, run.prep.config, run.prep.model, run.result
    x_test, x_ood = activations.held_out_inputs(run)
    _, test_acc, test_pred = evaluation.evaluate(run.stepper, x_test, prep.y_test)
    _, ood_acc, _ = evaluation.evaluate(run.stepper, x_ood, prep.y_test)
    y_test = prep.y_test.cpu().numpy()
    findings = health.check(result.history, y_test, test_pred, len(result.classes), fitted_head=run.stepper.head_only,
                            converge_budget=cfg.effective_budget == "converge")
    for f in findings:
        what = "Finding" if f.get("result") else "Unhealthy run"
        run.emit(Message(f"{what}: {f['message']}. {f['advice'].capitalize()}.", level="warning"))
    result.status = "completed"
    result.summary = RunSummary(
        best_val_acc=run.select.key[0], final_val_acc=result.history[-1]["val_acc"],
        selected_epoch=run.select.epoch, test_acc=test_acc, ood_acc=ood_acc, ood_shift=prep.ood_shift,
        health=findings, classes=result.classes, **classification_report(y_test, test_pred, result.classes),
        trainable_params=prep.plan.trainable_params, total_params=prep.plan.total_params,
        wall_s=time.perf_counter() - run.start, n_train=length(prep.x_train), n_val=len(prep.y_val),
        n_test=len(prep.y_test), device=str(prep.device), threads=cfg.threads, deterministic=deterministic(prep.device),
        cached_boundary=run.cached_boundary, freeze_depth=prep.depth, n_blocks=model.n_blocks,
        image_size=cfg.image_size, epochs_run=result.history[-1]["epoch"], evaluations=len(result.history),
        budget=cfg.effective_budget, head_solver="lbfgs" if run.stepper.head_only else "adamw",
        lr=None if run.stepper.head_only else cfg.effective_lr(model.family),
        activation_cache=run.shared.status if run.shared is not None else None, **run.extras,
    )
    if cfg.mode == "finetune" and cfg.pretrained and prep.depth < model.n_blocks:
        result.summary.block_similarity = _block_change(run)
    result.model = model


def _block_change(run: RunState) -> dict | None:
    """How far each block moved from its pretrained start (linear CKA, see similarity.py).

    A measurement after training, outside `wall_s`; if it cannot be made the run still completes.
    """
    from tl_core.engine import similarity

    prep, cfg = run.prep, run.prep.config
    try:
        run.emit(Message("Measuring which blocks fine-tuning changed (CKA against the pretrained network)…"))
        reference = backbones.build(cfg.backbone, n_classes=len(prep.dataset.classes), pretrained=True, seed=cfg.seed,
                                    image_size=cfg.image_size, max_length=cfg.max_length).to(prep.device)
        if reference.family == "vision":
            reference.to(memory_format=torch.channels_last)
        n_val = length(prep.x_val)
        spread = torch.linspace(0, n_val - 1, similarity.probe_count(prep.model, n_val)).long().to(prep.device)
        cka = similarity.block_similarity(reference, prep.model, take(prep.x_val, spread), frozen=prep.depth)
    except Exception as err:  # e.g. the weights went missing: report it, keep the run
        run.emit(Message(f"Could not measure which blocks changed: {type(err).__name__}: {err}"))
        return None
    return {"blocks": prep.model.block_names, "cka": cka, "items": len(spread),
            "frozen": [b.frozen for b in prep.plan.blocks]}
