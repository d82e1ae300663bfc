"""Plain-text readings of results, for a class: pure functions, no UI, no plotting library.

``gap_sentence`` reads the transfer gap (pretrained vs from scratch) in one
sentence; ``describe_freeze`` says in one line which blocks train.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Short words for a mode inside a sentence.
MODE_WORDS: dict[str, str] = {"frozen": "frozen", "finetune": "fine-tuned", "scratch": "scratch"}

PRETRAINED_MODES: tuple[str, ...] = ("frozen", "finetune")

_HEAD_NAMES = {"head", "classifier", "fc", "new head"}


# ----------------------------------------------------------------------------
# Run-record helpers (shared with tl_core.plots)
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


def _comparison_group(done: list[Mapping[str, Any]]) -> tuple[Any, list[Mapping[str, Any]]]:
    """Pick the runs to compare: a single labels-per-class value (a controlled comparison).

    Prefer the most recent labels-per-class value at which both a pretrained run
    and a from-scratch run exist; else the most recent value.
    """
    lpcs = {_lpc(r) for r in done}
    if len(lpcs) <= 1:
        return (next(iter(lpcs)) if lpcs else None), done
    recency = latest_by(done, _lpc)  # lpc -> its latest run
    ordered = sorted(recency, key=lambda v: str(recency[v].get("created_at") or ""), reverse=True)
    for v in ordered:
        group = [r for r in done if _lpc(r) == v]
        modes = {_mode(r) for r in group}
        if "scratch" in modes and modes & set(PRETRAINED_MODES):
            return v, group
    v = ordered[0]
    return v, [r for r in done if _lpc(r) == v]


def _pct(frac: float) -> int:
    return int(round(100 * frac))


def _signed(points: int) -> str:
    if points > 0:
        return f"+{points}"
    if points < 0:
        return f"\u2212{abs(points)}"  # a real minus sign
    return "\u00b10"


def gap_sentence(runs: Iterable[Mapping[str, Any]] | None) -> str:
    """One sentence reading the transfer gap; always contains "over training from scratch".

    Percent values are rounded first and the gap is their difference, so the
    numbers a student reads add up.
    """
    done = completed_runs(runs)
    if not done:
        return (
            "No completed runs yet: train a frozen or fine-tuned model and a from-scratch "
            "baseline to measure the gain over training from scratch."
        )
    lpc, group = _comparison_group(done)
    best = best_by_mode(group)
    with_lpc = f" with {lpc} labels per class" if lpc is not None else ""
    pre = {m: best[m] for m in PRETRAINED_MODES if m in best}

    if "scratch" not in best:
        if pre:
            m = max(pre, key=lambda k: pre[k])
            return (
                f"The best pretrained run ({MODE_WORDS[m]}) reached {_pct(pre[m])}%{with_lpc}. "
                "Run a from-scratch baseline to measure the gain over training from scratch."
            )
        return "Run a from-scratch baseline to measure the gain over training from scratch."
    if not pre:
        return (
            f"Training from scratch reached {_pct(best['scratch'])}%{with_lpc}; run a frozen or "
            "fine-tuned model to measure what pretrained features gain over training from scratch."
        )

    # Ties prefer "frozen": the cheaper option that reached the same accuracy.
    m = max(pre, key=lambda k: (_pct(pre[k]), k == "frozen"))
    points = _pct(pre[m]) - _pct(best["scratch"])
    detail = ", ".join(f"{MODE_WORDS[k]} {_pct(v)}%" for k, v in pre.items())
    detail += f", scratch {_pct(best['scratch'])}%"
    which = "fine-tuned" if m == "finetune" else "frozen"
    lead = f"Pretrained features ({which}) gave {_signed(points)} points over training from scratch{with_lpc}"
    if points > 0:
        return f"{lead} ({detail})."
    if points == 0:
        return f"{lead} ({detail}): no gain, so this data may be far from ImageNet."
    return (
        f"{lead} ({detail}): the data is likely far from ImageNet (domain mismatch), "
        "so transfer did not help."
    )


# ----------------------------------------------------------------------------
# What trains
# ----------------------------------------------------------------------------


def _span(names: Sequence[str]) -> str:
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return f"{names[0]}…{names[-1]}"


def describe_freeze(block_names: Sequence[str], freeze_depth: int | None, mode: str) -> str:
    """One line: "Blocks stem…stage2 frozen, stage3…head train."

    Frozen: all blocks in "frozen"; the first ``freeze_depth`` in "finetune";
    none in "scratch". The head always trains (appended if not in ``block_names``).
    """
    names = [str(n) for n in block_names]
    head = "head"
    if names and names[-1].lower() in _HEAD_NAMES:
        head, names = names[-1], names[:-1]
    n = len(names)
    if mode == "frozen":
        k = n
    elif mode == "finetune":
        k = max(0, min(int(freeze_depth or 0), n))
    else:
        k = 0
    frozen, train = names[:k], names[k:] + [head]
    if not frozen:
        if mode == "scratch":
            return f"No blocks frozen: {_span(train)} all train from random initialisation."
        return f"No blocks frozen: {_span(train)} all train."
    noun = "Block" if len(frozen) == 1 else "Blocks"
    if len(train) == 1:
        return f"{noun} {_span(frozen)} frozen; only the {head} trains."
    return f"{noun} {_span(frozen)} frozen, {_span(train)} train."
