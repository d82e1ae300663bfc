"""The split a run really got, in words: the per-class numbers the data allowed, beside the ones that were asked.

Validation and test each take at most a third of a class, and a class can hold fewer items than the labels asked
for, so "Validation 20" on a set of 30 images per class trains and scores on 10. Wherever a page names a split
(the Data page's inputs, the Compare and Explain groups) it names these effective numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tl_core.records import summary_of
from ui.views import per_class_text as per_class


def capped_note(asked: int | None, counts: Sequence[int]) -> str:
    """The caption under a per-class input: empty when every class got what was asked; 'capped at 10 by the
    data' when some got less; for labels, `asked` None (all) says how many that is."""
    if not len(counts):
        return ""
    if asked is None:
        return f"all: {per_class(counts)} per class"
    if min(int(v) for v in counts) < int(asked):
        return f"capped at {per_class(counts)} by the data"
    return ""


def mean_per_class(total: int | None, n_classes: int) -> str | None:
    """A run's items per class from its total (the summary keeps totals): '10', or '≈9.5' for uneven classes."""
    if total is None or n_classes <= 0:
        return None
    share = total / n_classes
    return str(int(share)) if share == int(share) else f"≈{share:.1f}"


def run_split(run: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(validation, test) items per class that `run` was scored on, from its summary; None where not recorded."""
    summary = summary_of(run)
    n_classes = len(summary.get("classes") or [])
    return mean_per_class(summary.get("n_val"), n_classes), mean_per_class(summary.get("n_test"), n_classes)


def _one_split(run: Mapping[str, Any]) -> str:
    val, test = run_split(run)
    if val is None or test is None:
        return ""
    cfg = run.get("config") or {}
    parts = [f"{got} {name}" + (f" (asked {want}, capped by the data)" if want is not None and got != str(want) else "")
             for got, want, name in ((val, cfg.get("val_per_class"), "validation"),
                                     (test, cfg.get("test_per_class"), "test"))]
    return f"{parts[0]} and {parts[1]} items per class"


def split_words(runs: Sequence[Mapping[str, Any]]) -> str:
    """'10 validation and 10 test items per class' for the runs' splits (each different one once, '; ' between);
    where the data capped a setting, the asked value follows in brackets. Empty when no run recorded its split."""
    found: list[str] = []
    for run in runs:
        words = _one_split(run)
        if words and words not in found:
            found.append(words)
    return "; ".join(found)
