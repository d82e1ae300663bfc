"""Words for the Inspect page and the `embed`/`mistakes` commands: which space is which, one sentence reading the
separation numbers, and a caption for an item. Pure functions, no UI, no plotting library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tl_core.presentation.formatting import format_pct
from tl_core.presentation.report import Reading

AFTER_WORDS = {"finetune": "fine-tuning", "scratch": "training from scratch", "frozen": "training"}


def space_titles(mode: str, pretrained_start: bool) -> tuple[str, str]:
    """(before, after) for the two maps."""
    before = "Pretrained backbone (before training)" if pretrained_start else "Random initial weights (before training)"
    if mode == "frozen":
        after = "After training (backbone frozen)"
    else:
        after = f"After {AFTER_WORDS.get(mode, 'training')}"
    return before, after


def _knn(sep: Mapping[str, Any]) -> str:
    return format_pct(sep.get("knn_acc"))


def two_decimals(value: float | None) -> str:
    """0.1234 -> '0.12'; never '-0.00'."""
    return "?" if value is None else f"{value:.2f}".replace("-0.00", "0.00")


def _sil(sep: Mapping[str, Any]) -> str:
    return two_decimals(sep.get("silhouette"))


def read_separation(result: Mapping[str, Any]) -> Reading:
    """One sentence: do the classes separate more after training? From `Embeddings.to_dict()`: k-NN accuracy
    (cross-validated on the items) and silhouette score in each space, and the fold-by-fold gain.

    `ok` is False when the sentence reads no result: an unhealthy run, or too few items to measure."""
    before, after = result.get("before") or {}, result.get("after") or {}
    numbers = (f"k-NN accuracy {_knn(before)} → {_knn(after)}, silhouette {_sil(before)} → {_sil(after)}")
    if before.get("knn_acc") is None:
        return Reading(f"Too few items per class to measure the separation ({numbers}): use more validation "
                       "items per class.", False)
    unhealthy = bool(result.get("health"))
    caveat = " This run is unhealthy, so read it with care." if unhealthy else ""
    if result.get("unchanged"):
        return Reading(f"The backbone was frozen, so its features are exactly the pretrained ones (k-NN accuracy "
                       f"{_knn(after)}, silhouette {_sil(after)} in both): only the new head learned, to read "
                       f"them.{caveat}", not unhealthy)
    words = AFTER_WORDS.get(str(result.get("mode")), "training")
    gain, se = result.get("knn_gain"), result.get("knn_gain_se")
    spread = "" if gain is None else f"; {100 * gain:+.0f} ± {100 * (se or 0):.0f} points over the same folds"
    direction = result.get("direction")
    if direction == "more":
        head = f"Classes separate more after {words}"
    elif direction == "less":
        head = f"Classes separate less after {words}"
    else:
        head = f"Classes separate about as well after {words} as before"
    return Reading(f"{head}: {numbers}{spread}.{caveat}", not unhealthy)


def gain_deltas(result: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The k-NN and silhouette changes as metric deltas ("+3.0 points", "+0.12"); None where nothing changed (a
    frozen run's features are the pretrained ones: no arrow for a change that cannot happen) or none is known."""
    if result.get("unchanged"):
        return None, None
    knn, sil = result.get("knn_gain"), result.get("silhouette_gain")
    return (None if knn is None else f"{100 * knn:+.1f} points", None if sil is None else f"{sil:+.2f}")


def item_caption(row: Mapping[str, Any], top: int = 2) -> str:
    """'true cat · dog (54%), cat (10%)' for a gallery item (a row of `Predictions.row`): the true class, then the
    model's most likely classes (the brackets keep class names that are numbers apart from the percentages)."""
    probs = ", ".join(f"{p['class']} ({format_pct(p['probability'])})" for p in (row.get("top") or [])[:max(1, top)])
    return f"true {row['true']} · {probs}"
