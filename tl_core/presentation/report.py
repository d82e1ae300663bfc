"""Plain-text readings of results, for a class: pure functions, no UI, no plotting library.

``gap_sentence`` reads the transfer gap (pretrained vs from scratch) in one
sentence. (Which blocks train is said by the run plan: tl_core.engine.plan.RunPlan.sentence.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from tl_core.runs import comparison

#: Short words for a mode inside a sentence.
MODE_WORDS: dict[str, str] = {"frozen": "frozen", "finetune": "fine-tuned", "scratch": "scratch"}

PRETRAINED_MODES: tuple[str, ...] = ("frozen", "finetune")



# ----------------------------------------------------------------------------
# Run-record helpers (shared with tl_core.presentation.plots)
# ----------------------------------------------------------------------------


def best_val_acc(run: Mapping[str, Any]) -> float | None:
    """summary.best_val_acc, else the best val_acc seen in the history so far."""
    best = (run.get("summary") or {}).get("best_val_acc")
    if best is not None:
        return float(best)
    vals = [h.get("val_acc") for h in run.get("history") or [] if h.get("val_acc") is not None]
    return float(max(vals)) if vals else None


def completed_runs(runs: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """Completed runs that have a best validation accuracy, in their given order."""
    return [
        r
        for r in runs or []
        if r.get("status", "completed") == "completed" and best_val_acc(r) is not None
    ]


def latest_by(runs: Iterable[Mapping[str, Any]], key) -> dict[Any, Mapping[str, Any]]:
    """For each ``key(run)``, the most recent run (by created_at; ties -> later in the list)."""
    out: dict[Any, Mapping[str, Any]] = {}
    for r in runs:
        k = key(r)
        prev = out.get(k)
        if prev is None or str(r.get("created_at") or "") >= str(prev.get("created_at") or ""):
            out[k] = r
    return out


def _mode(run: Mapping[str, Any]) -> Any:
    return (run.get("config") or {}).get("mode")


def _lpc(run: Mapping[str, Any]) -> Any:
    return (run.get("config") or {}).get("labels_per_class")


# ----------------------------------------------------------------------------
# Transfer gap
# ----------------------------------------------------------------------------


def best_by_mode(runs: Iterable[Mapping[str, Any]] | None) -> dict[str, float]:
    """{mode: best_val_acc} over completed runs; with several runs of a mode, the latest."""
    latest = latest_by(completed_runs(runs), _mode)
    return {m: best_val_acc(r) for m, r in latest.items() if m is not None}  # type: ignore[misc]


def _pct(frac: float) -> int:
    return int(round(100 * frac))


def _signed(points: int) -> str:
    if points > 0:
        return f"+{points}"
    if points < 0:
        return f"\u2212{abs(points)}"  # a real minus sign
    return "\u00b10"


def _spread(points: float) -> str:
    return f" \u00b1 {round(points)}"


def cell_words(cell: comparison.Cell) -> str:
    """'fine-tuned (k=5)', 'frozen', 'scratch (same budget)'."""
    word = MODE_WORDS.get(cell.mode, str(cell.mode))
    if cell.depth_label:
        word += f" ({cell.depth_label})"
    if cell.mode != "frozen" and cell.budget == "fixed":
        word += " (same budget)"
    return word


def cell_value(cell: comparison.Cell) -> str:
    return f"{_pct(cell.mean)}%" + (_spread(100 * cell.std) if cell.n > 1 else "")


def _comparison_group(all_cells: list[comparison.Cell]) -> tuple[Any, list[comparison.Cell]]:
    """The labels-per-class value to read: the most recent one with both a pretrained and a from-scratch cell,
    else the most recent one (a controlled comparison compares like with like)."""
    groups = comparison.by_labels(all_cells)
    recency = {lpc: max(str(r.get("created_at") or "") for c in g for r in c.runs) for lpc, g in groups.items()}
    ordered = sorted(groups, key=lambda v: recency[v], reverse=True)
    for v in ordered:
        modes = {c.mode for c in groups[v]}
        if "scratch" in modes and modes & set(PRETRAINED_MODES):
            return v, groups[v]
    return ordered[0], groups[ordered[0]]


def setting_words(cell: comparison.Cell) -> str:
    """'fine-tuned, k=5', 'frozen', 'scratch, same budget': inside a sentence's parentheses."""
    return cell_words(cell).replace(" (", ", ").replace(")", "")


def _unhealthy(cell: comparison.Cell) -> str:
    finding = cell.findings[0]
    who = "The from-scratch baseline" if cell.mode == "scratch" else "The pretrained run"
    return (f"{who} ({setting_words(cell)}) is not a result: {finding['message']} "
            f"({cell.unhealthy_runs} of {cell.n} seed{'s' if cell.n > 1 else ''}). {finding['advice'].capitalize()}; "
            "no gain over training from scratch is read from it.")


class Reading(NamedTuple):
    """A sentence for the class, whether it reads a result (False: a run is missing or unhealthy), and a second
    line with the details (every arm's accuracy and spread)."""

    text: str
    ok: bool
    detail: str = ""


def gap_sentence(runs: Iterable[Mapping[str, Any]] | None) -> str:
    reading = read_gap(runs)
    return f"{reading.text} {reading.detail}".strip()


def _subject(cell: comparison.Cell) -> str:
    """Who reaches the accuracy, in a student's words, with its verb."""
    if cell.mode == "frozen":
        return "pretrained features (frozen) reach"
    notes = [cell.depth_label] if cell.depth_label else []
    if cell.budget == "fixed":
        notes.append("same short budget")
    return "fine-tuning the pretrained network" + (f" ({', '.join(notes)})" if notes else "") + " reaches"


def _seeds(best: comparison.Cell, scratch: comparison.Cell) -> str:
    if best.n == scratch.n:
        return f"{best.n} seed{'s' if best.n > 1 else ''}"
    return f"{best.n} seed{'s' if best.n > 1 else ''} against {scratch.n}"


def read_gap(runs: Iterable[Mapping[str, Any]] | None) -> Reading:
    """The transfer gap on test accuracy, in a sentence a student reads aloud, then its details.

    "With 25 labels per class, pretrained features (frozen) reach 84% and training from scratch 68%: transfer gains
    16 points over training from scratch (3 seeds, ± 2)." It reads the same cells the table and the gap chart
    show: the fair from-scratch baseline and the pretrained setting that validation picked, at one labels-per-class
    value. Percent values are rounded first and the gap is their difference, so the numbers a student reads add
    up. An unhealthy cell is named as such, never read as a result; a baseline that could not learn the task with
    a fair budget is a result, and the sentence says so.
    """
    all_cells = comparison.cells(runs)
    if not all_cells:
        return Reading("No completed runs with a test accuracy yet: train a frozen or fine-tuned model and a "
                       "from-scratch baseline to measure the gain over training from scratch.", False)
    lpc, group = _comparison_group(all_cells)
    with_lpc = f"With {lpc} labels per class, " if lpc is not None else "With every label, "
    scratch = comparison.pick_scratch(group)
    pre = [c for c in (comparison.pick_pretrained(group, m) for m in PRETRAINED_MODES) if c is not None]
    if scratch is None:
        if pre:
            best = max(pre, key=lambda c: c.val_mean)
            return Reading(f"{with_lpc}{_subject(best)} {cell_value(best)}. Run a from-scratch baseline to "
                           "measure the gain over training from scratch.", False)
        return Reading("Run a from-scratch baseline to measure the gain over training from scratch.", False)
    if not pre:
        return Reading(f"{with_lpc}training from scratch reaches {cell_value(scratch)}; run a frozen or fine-tuned "
                       "model to measure what pretrained features gain over training from scratch.", False)
    if not scratch.healthy:
        return Reading(_unhealthy(scratch), False)
    # Validation picks the headline (ties: frozen, the cheaper one); the sentence then quotes test accuracy.
    best = max(pre, key=lambda c: (round(c.val_mean, 6), c.mode == "frozen"))
    if not best.healthy:
        return Reading(_unhealthy(best), False)
    gap = comparison.Gap(best, scratch)
    points = _pct(best.mean) - _pct(scratch.mean)
    spread = f", \u00b1 {round(100 * gap.std)}" if gap.n > 1 else ""
    baseline = "training from scratch" + (" (same short budget)" if scratch.budget == "fixed" else "")
    could_not = ""
    if scratch.results:
        could_not = (f", which could not learn this task from {lpc or 'these'} labels per class even trained to "
                     "convergence")
    lead = f"{with_lpc}{_subject(best)} {_pct(best.mean)}% and {baseline} {_pct(scratch.mean)}%{could_not}: "
    count = f"({_seeds(best, scratch)}{spread})"
    if points > 0:
        text = f"{lead}transfer gains {points} points over training from scratch {count}."
    elif points == 0:
        text = f"{lead}no gain over training from scratch {count}: this data may be far from ImageNet."
    else:
        text = (f"{lead}transfer loses {-points} points against training from scratch {count}: the data is likely "
                "far from ImageNet (domain mismatch), so transfer hurt (negative transfer).")
    shown = [*pre, scratch]
    counts = {c.n for c in shown}
    if len(counts) == 1:  # every cell over the same seeds: say it once
        n = counts.pop()
        seeds = f"mean \u00b1 std over {n} seeds" if n > 1 else "one seed"
        detail = ", ".join(f"{cell_words(c)} {cell_value(c)}" for c in shown)
    else:
        seeds = "mean \u00b1 std over seeds"
        detail = ", ".join(f"{cell_words(c)} {cell_value(c)} ({c.n} seed{'s' if c.n > 1 else ''})" for c in shown)
    return Reading(text, True, f"Test accuracy at the epoch validation chose, {seeds}: {detail}.")


def efficiency_sentence(runs: Iterable[Mapping[str, Any]] | None) -> str:
    """One sentence on the data-efficiency curve: where (if anywhere) the fair scratch baseline catches up."""
    all_cells = [c for c in comparison.cells(runs) if c.labels_per_class is not None]
    groups = comparison.by_labels(all_cells)
    measured = sorted(v for v, g in groups.items()
                      if comparison.pick_scratch(g) and any(c.mode in PRETRAINED_MODES for c in g))
    if len(measured) < 2:
        return ("Measure frozen, fine-tuned and from-scratch runs at two or more labels-per-class values to see "
                "when transfer pays.")
    unhealthy = [v for v in measured if not comparison.pick_scratch(groups[v]).healthy]
    caveat = (f" The from-scratch runs at {', '.join(map(str, unhealthy))} labels per class are unhealthy and "
              "prove nothing there." if unhealthy else "")
    # One arm "catches" another only where both trained to convergence (a frozen head is always fitted so).
    converged = all(c.budget == "converge" for c in all_cells if c.mode == "scratch")
    tuned_converged = converged and all(c.budget == "converge" for c in all_cells if c.mode == "finetune")
    frozen_at = comparison.crossover(all_cells, "frozen") if converged else None
    tuned_at = comparison.crossover(all_cells, "finetune") if tuned_converged else None
    if not converged:
        return ("The from-scratch runs here had the same short budget as the pretrained ones, so no crossover is "
                f"read from them: train the baseline to convergence to see when transfer pays.{caveat}")
    if frozen_at is None and tuned_at is None:
        return (f"Pretrained features stay ahead of training from scratch at every labels-per-class value measured "
                f"({measured[0]} to {measured[-1]}): this data is close enough to what the backbone was trained "
                f"on that transfer pays even with plenty of labels.{caveat}")
    why = ("with enough labels a network learns this data's own features, and features made for another "
           "domain stop helping (domain mismatch); where scratch is ahead, transfer hurts (negative transfer)")
    if tuned_at is None:
        return (f"Training from scratch catches feature extraction from {frozen_at} labels per class on: {why}. "
                f"Fine-tuning adapts the features and stays ahead up to {measured[-1]}.{caveat}")
    if frozen_at is None:
        return (f"Training from scratch catches fine-tuning from {tuned_at} labels per class on, while frozen "
                f"features stay ahead: {why}.{caveat}")
    return (f"Training from scratch catches feature extraction from {frozen_at} and fine-tuning from {tuned_at} "
            f"labels per class on: {why}.{caveat}")


# ----------------------------------------------------------------------------
# What trains
# ----------------------------------------------------------------------------


