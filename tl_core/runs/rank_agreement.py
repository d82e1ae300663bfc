"""Did the ranking predict training? Kendall's tau between the scores and the test accuracies of stored runs.

A score is only checked against runs it predicts: completed, healthy runs on the same data, backbone and
initialisation, with the same label budget, validation/test sizes and image size (or max length) as the ranking.
Feature extraction (frozen) runs are what LogME and the H-score model, so they are used whenever at least three
scored backbones have one; otherwise fine-tuning runs. A backbone's accuracy is the mean over its runs (seeds).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tl_core.engine.ranking import BackboneScore, Ranking
from tl_core.engine.transferability import rank_agreement

MIN_BACKBONES = 3  # below this a rank correlation means nothing
MODES = ("frozen", "finetune")  # in order of preference


@dataclass
class Measured:
    name: str
    pretrained: bool
    logme: float
    hscore: float
    accuracy: float | None  # mean test accuracy over the matching runs
    accuracy_std: float | None
    runs: int
    unhealthy: int  # matching runs left out because they are not results (one class predicted, stuck at chance)


# The only reads of a run's summary (it becomes a RunSummary dataclass): its test accuracy and its health.
def test_acc(record: dict) -> float | None:
    return (record.get("summary") or {}).get("test_acc")


def healthy(record: dict) -> bool:
    from tl_core.engine.health import problems

    return not problems((record.get("summary") or {}).get("health"))


def matches(record: dict, ranking: Ranking, score: BackboneScore, mode: str) -> bool:
    """Whether `record` is a finished `mode` run of `score`'s backbone and initialisation on the ranking's settings:
    the runs whose test accuracy the score predicts (tl_core.runs.imagenet_transfer reads the same ones)."""
    c = record.get("config") or {}
    same_input = (c.get("image_size") == score.image_size if ranking.kind == "image"
                  else c.get("max_length", 64) == ranking.max_length)
    return (record.get("status") == "completed" and c.get("data") == ranking.data and c.get("mode") == mode
            and c.get("backbone") == score.name and bool(c.get("pretrained", True)) == score.pretrained
            and c.get("labels_per_class") == ranking.labels_per_class
            and c.get("val_per_class", 20) == ranking.val_per_class
            and c.get("test_per_class", 50) == ranking.test_per_class and same_input
            and test_acc(record) is not None)


def measured(ranking: Ranking, records: list[dict], mode: str) -> list[Measured]:
    out = []
    for s in ranking.scores:
        runs = [r for r in records if matches(r, ranking, s, mode)]
        accs = [test_acc(r) for r in runs if healthy(r)]
        out.append(Measured(s.name, s.pretrained, s.logme, s.hscore,
                            float(np.mean(accs)) if accs else None,
                            float(np.std(accs, ddof=1)) if len(accs) > 1 else None, len(accs), len(runs) - len(accs)))
    return out


def agreement(ranking: Ranking, records: list[dict]) -> dict:
    """{"mode", "backbones": [Measured...], "logme": {...}, "hscore": {...}, "n"}: the taus (and weighted taus, p
    values) of LogME and H-score against the measured accuracy, over the backbones that have one; the statistics
    are None below MIN_BACKBONES."""
    by_mode = {m: measured(ranking, records, m) for m in MODES}
    counts = {m: sum(x.accuracy is not None for x in rows) for m, rows in by_mode.items()}
    mode = next((m for m in MODES if counts[m] >= MIN_BACKBONES), max(MODES, key=lambda m: counts[m]))
    rows = by_mode[mode]
    have = [x for x in rows if x.accuracy is not None]
    accs = [x.accuracy for x in have]
    out = {"mode": mode if have else None, "backbones": [asdict(x) for x in rows], "n": len(have)}
    for score in ("logme", "hscore"):
        out[score] = rank_agreement([getattr(x, score) for x in have], accs)
    return out


def unmeasured(ranking: Ranking, records: list[dict]) -> list[BackboneScore]:
    """Scored backbones with no finished feature-extraction run on the ranking's settings yet."""
    return [s for s, m in zip(ranking.scores, measured(ranking, records, "frozen")) if not m.runs + m.unhealthy]
