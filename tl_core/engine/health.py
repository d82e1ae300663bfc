"""Is this run a result, or a failure that looks like one?

A from-scratch network that predicts one class for every item, or a model stuck at chance while its training
accuracy climbs, says nothing about transfer when it simply stopped too early: reading a gap off it teaches the
wrong lesson. Each finding says what is wrong and what to do; the app, the CLI and the gap sentence show them
instead of drawing a conclusion.

The same symptoms after a fair budget, with the training loss no longer falling, are a result, not a failure:
this network cannot learn the task from these labels. Such a finding carries `"result": True`; it is reported
beside the numbers ("training from scratch could not learn this from 50 labels per class"), and the run counts
as healthy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Validation accuracy within this of chance counts as "at chance".
CHANCE_MARGIN = 0.02
#: Training accuracy this far above chance means the network did learn something.
LEARNED_MARGIN = 0.2
#: A training loss under this share of a uniform guess's (ln K) is already fitted: a flat curve there is a head
#: that converged in its first slice (frozen runs on few labels), not a run that failed to learn.
FITTED_LOSS_SHARE = 0.1
#: The training loss "still falls" when its last value is below this share of its value three quarters through.
STILL_FALLING = 0.9


def finding(code: str, message: str, advice: str, *, result: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "message": message, "advice": advice}
    if result:
        out["result"] = True
    return out


def problems(findings: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """The findings that make a run no result (not those that are a result about the data)."""
    return [f for f in findings or () if not f.get("result")]


def still_falling(losses: Sequence[float]) -> bool:
    """Whether the training loss was still going down at the end (more steps would have moved it)."""
    if len(losses) < 4:
        return True
    return losses[-1] < STILL_FALLING * losses[(3 * len(losses)) // 4 - 1]


def check(history: Sequence[Mapping[str, Any]], y_true: np.ndarray | None, y_pred: np.ndarray | None,
          n_classes: int, *, fitted_head: bool = False, converge_budget: bool = False) -> list[dict[str, Any]]:
    """Findings for a run: its epoch history and its predictions on the held-out items it reports.

    `fitted_head`: a head fitted to convergence by a convex solver (its curve is flat because it converged in the
    first slice, not because it failed to learn). `converge_budget`: the run had the fair budget, so a collapse
    with a settled loss is a result about the data."""
    found = []
    losses = [h.get("train_loss") for h in history]
    if any(v is None or not math.isfinite(v) for v in losses) or any(
            not math.isfinite(h.get("val_loss", 0.0)) for h in history):
        found.append(finding("diverged", "the loss became NaN or infinite: training diverged",
                             "lower the learning rate"))
        return found
    fitted = fitted_head or (losses and losses[-1] < FITTED_LOSS_SHARE * math.log(max(n_classes, 2)))
    settled = converge_budget and len(losses) >= 2 and losses[-1] < losses[0] and not still_falling(losses)
    if len(losses) >= 2 and losses[-1] >= losses[0] and not fitted:
        found.append(finding("loss_flat", f"the training loss did not decrease ({losses[0]:.3f} -> {losses[-1]:.3f})",
                             "raise the learning rate or train longer"))
    if y_true is not None and y_pred is not None and len(y_pred):
        counts = np.bincount(np.asarray(y_pred), minlength=n_classes)
        top = int(counts.argmax())
        share = counts[top] / len(y_pred)
        true_share = float(np.mean(np.asarray(y_true) == top))
        if share > max(0.5, true_share + 0.25) and settled:
            found.append(finding("cannot_learn", f"trained to convergence, it still predicts {share:.0%} of the "
                                 f"held-out items as one class (class {top}): it could not learn this task from "
                                 "these labels", "a result about the data: a pretrained start, or more labels, is "
                                 "what it lacks", result=True))
        elif share > max(0.5, true_share + 0.25):
            found.append(finding("one_class", f"{share:.0%} of the held-out items are predicted as one class "
                                 f"(class {top}), which holds {true_share:.0%} of them",
                                 "train longer or with a larger learning rate; from scratch, use the "
                                 "'trained to convergence' budget"))
        chance = max(np.bincount(np.asarray(y_true), minlength=n_classes)) / len(y_true)
        acc = float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
        train_acc = history[-1].get("train_acc") if history else None
        at_chance = acc <= chance + CHANCE_MARGIN and train_acc is not None and train_acc >= chance + LEARNED_MARGIN
        if at_chance and settled and not any(f["code"] == "cannot_learn" for f in found):
            found.append(finding("cannot_learn", f"trained to convergence, its held-out accuracy {acc:.0%} is at chance "
                                 f"({chance:.0%}) while training accuracy reached {train_acc:.0%}: it memorised the "
                                 "training items and could not learn this task from these labels",
                                 "a result about the data: a pretrained start, or more labels, is what it lacks",
                                 result=True))
        elif at_chance and not settled:
            found.append(finding("at_chance", f"held-out accuracy {acc:.0%} is at chance ({chance:.0%}) while "
                                 f"training accuracy reached {train_acc:.0%}: nothing it learned generalises",
                                 "use more labels per class, a pretrained start, or a longer budget"))
    return found


def healthy(summary: Mapping[str, Any] | None) -> bool:
    return not problems((summary or {}).get("health"))


def describe(findings: Sequence[Mapping[str, str]]) -> str:
    """One line for a table cell or a warning: 'ok', or the findings' messages."""
    if not findings:
        return "ok"
    return "; ".join(f["message"] for f in findings)
