"""Scoring a network fairly: BatchNorm statistics re-estimated first, then validation or test accuracy.

A BatchNorm network's running statistics describe the weights as they were during the epoch, not as they are
at its end; every evaluation re-estimates them first (precise BatchNorm), so a curve point or a test accuracy
is never an artefact of stale statistics. The epoch-end evaluations run beside the next epochs (`Evaluations`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from tl_core.engine import precise_bn
from tl_core.engine.batching import EVAL_BATCH, autocast, batches, length, take
from tl_core.engine.run_state import RunState
from tl_core.engine.stepper import Stepper
from tl_core.events import EpochMetrics


@torch.no_grad()
def evaluate(stepper: Stepper, x, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and the predicted classes of the model on inputs `x` with labels `y`."""
    losses, preds = [], []
    stepper.set_train(False)
    for start, batch in zip(range(0, len(y), EVAL_BATCH), batches(x)):
        with autocast(stepper.prep.device):
            logits = stepper.logits(batch, train=False).float()
        losses.append(nn.functional.cross_entropy(logits, y[start:start + EVAL_BATCH], reduction="sum").item())
        preds.append(logits.argmax(1).cpu())
    stepper.set_train(True)
    pred = torch.cat(preds).numpy()
    return sum(losses) / len(y), float((pred == y.cpu().numpy()).mean()), pred


def settle_batchnorm(stepper: Stepper, x_train) -> int:
    """Precise BatchNorm on (a seeded spread of) the training inputs, without augmentation."""
    n = length(x_train)
    if n > precise_bn.MAX_ITEMS:
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(stepper.prep.config.seed))[:precise_bn.MAX_ITEMS]
        x_train = take(x_train, pick.sort().values.to(stepper.prep.device))

    def forward(batch):
        with autocast(stepper.prep.device):
            stepper.logits(batch, train=False)

    return precise_bn.recompute(stepper.model, batches(x_train), forward)


class Evaluations:
    """The epoch-end evaluations of a trained network (precise BatchNorm, validation, the selection's offer), on a
    copy of the model and a second thread while the next epochs train.

    Nothing an evaluation does feeds back into training: BatchNorm in training mode normalises with each batch's
    own statistics, so re-estimating the running statistics and scoring validation only decide which epoch is
    kept. The copy gives the numbers an inline evaluation gives, and a run's wall time loses its evaluations
    wherever a core is free (a third of a from-scratch run on one thread). One evaluation is in flight at a time;
    the training thread reports the results, in epoch order. With `inline` (a GPU, a fitted head) each runs at
    once, on the model itself.
    """

    def __init__(self, run: RunState, inline: bool):
        self.run, self.xs = run, run.xs
        self.pending: list[tuple[tuple, Future]] = []  # (epoch, train loss, train acc, blocks), its scores
        self.pool, self.stepper, self.source = None, run.stepper, None
        if not inline:
            model = run.prep.model
            keep = {id(model.tokenizer): model.tokenizer} if model.tokenizer is not None else {}
            self.replica = copy.deepcopy(model, memo=keep)
            self.stepper = Stepper(dataclasses.replace(run.prep, model=self.replica), run.stepper.cached)
            tensors = {**dict(self.replica.named_parameters()), **dict(self.replica.named_buffers())}
            self.source = {k: tensors[k] for k in run.select.tracked}
            # flush-to-zero is a per-thread CPU flag: the evaluating thread must round as the training one does
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="tl-eval",
                                           initializer=torch.set_flush_denormal, initargs=(True,))

    def submit(self, epoch: int, train_loss: float, train_acc: float, t0: float) -> None:
        """Score the model's weights as they are now, as `epoch`'s point of the curve."""
        if self.pool is None:
            future: Future = Future()
            future.set_result(self._score(epoch, t0))
        else:
            self.drain(wait=True)  # the copy is free again
            model = self.run.prep.model
            if self.replica.frozen_blocks != model.frozen_blocks:  # gradual unfreezing: the same BatchNorms settle
                self.replica.freeze_blocks(model.frozen_blocks)
            with torch.no_grad():
                for k, t in self.run.select.tracked.items():
                    self.source[k].copy_(t)
            future = self.pool.submit(self._score, epoch, t0)
        self.pending.append(((epoch, train_loss, train_acc, self.run.trainable_blocks), future))
        self.drain()

    def _score(self, epoch: int, t0: float) -> tuple[float, float, float]:
        settle_batchnorm(self.stepper, self.xs["train"])
        val_loss, val_acc, _ = evaluate(self.stepper, self.xs["val"], self.run.prep.y_val)
        self.run.select.offer(epoch, val_acc, val_loss, self.source)
        return val_loss, val_acc, time.perf_counter() - t0

    def drain(self, wait: bool = False) -> None:
        """Report every finished evaluation (all of them with `wait`), oldest first."""
        while self.pending and (wait or self.pending[0][1].done()):
            (epoch, train_loss, train_acc, blocks), future = self.pending.pop(0)
            val_loss, val_acc, seconds = future.result()
            self.run.record(EpochMetrics(epoch, train_loss, train_acc, val_loss, val_acc, seconds,
                                         trainable_blocks=blocks))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
