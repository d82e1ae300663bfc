"""Which stored runs a page should offer first, and which ones must not be read as results.

Pure functions over run records (the dicts `RunStore.list_runs` returns), so the pages' defaults
are tested without a UI: Predict opens on a session's best healthy run on the data in use, Compare
overlays the completed runs of one comparison, and a run stuck at chance is flagged wherever it is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from tl_core.config import MODES
from tl_core.records import config_of, summary_of

#: A run whose best accuracy is within this of chance (1 / number of classes) learned nothing usable.
CHANCE_MARGIN = 0.02




def best_accuracy(run: Mapping[str, Any]) -> float | None:
    """The run's best validation accuracy (from its summary, else from its epochs)."""
    best = summary_of(run).get("best_val_acc")
    if best is None:
        accs = [h.get("val_acc") for h in run.get("history") or [] if h.get("val_acc") is not None]
        best = max(accs) if accs else None
    return None if best is None else float(best)


def n_classes(run: Mapping[str, Any]) -> int | None:
    classes = summary_of(run).get("classes")
    return len(classes) if classes else None


def health_findings(run: Mapping[str, Any]) -> list[dict]:
    """What is wrong with a run's result: the engine's own findings (`summary["health"]`) when it wrote any,
    else "at chance" when its best accuracy is within CHANCE_MARGIN of 1 / number of classes."""
    summary = summary_of(run)
    if isinstance(summary.get("health"), list):
        return [f for f in summary["health"] if isinstance(f, Mapping) and f.get("code") and not f.get("result")]
    best, n = best_accuracy(run), n_classes(run)
    if best is None or not n:
        return []
    chance = 1.0 / n
    if best <= chance + CHANCE_MARGIN:
        return [{"code": "at_chance",
                 "message": f"best validation accuracy {100 * best:.1f}% is at chance level "
                            f"({100 * chance:.1f}% for {n} classes): its predictions are guesses"}]
    return []


def is_unhealthy(run: Mapping[str, Any]) -> bool:
    return bool(health_findings(run))


def _newest_first(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(runs, key=lambda r: str(r.get("created_at") or ""), reverse=True)  # stable: store order on ties


def best_run(runs: Sequence[Mapping[str, Any]], *, data: str | None, owner: str | None = None) -> str | None:
    """The run id Predict opens on: a completed run on `data`, the owner's before anyone else's, healthy before
    unhealthy, then the best validation accuracy (the newest on a tie)."""
    done = [r for r in _newest_first(runs) if r.get("status") == "completed" and (data is None or config_of(r).get("data") == data)]
    if not done:
        return None

    def rank(r):
        return (owner is not None and r.get("owner") == owner, not is_unhealthy(r), best_accuracy(r) or 0.0)

    return max(done, key=rank)["run_id"]  # max keeps the first (newest) of equals


def comparison_key(run: Mapping[str, Any]) -> tuple:
    """Runs that differ only in how they train (mode, depth, epochs...): the same data, split and backbone."""
    cfg = config_of(run)
    return (cfg.get("data"), cfg.get("backbone"), cfg.get("labels_per_class"), cfg.get("val_per_class"),
            cfg.get("seed"))


def default_overlay(runs: Sequence[Mapping[str, Any]], limit: int = 6) -> list[str]:
    """Compare's first overlay: the completed runs of the newest comparison (never a cancelled or failed one)."""
    done = [r for r in _newest_first(runs) if r.get("status") == "completed"]
    if not done:
        return []
    key = comparison_key(done[0])
    return [r["run_id"] for r in done if comparison_key(r) == key][:limit]


# ---- Explain: the same model trained three ways, on the same validation items -------------------------------------
def explain_key(run: Mapping[str, Any]) -> tuple:
    """Runs whose validation items are the same images (the split's seed and size decide them; the labels per
    class do not) on the same backbone: their maps of one validation image compare like with like."""
    cfg = config_of(run)
    return cfg.get("data"), cfg.get("backbone"), cfg.get("seed", 0), cfg.get("val_per_class", 20)


@dataclass
class ModeGroup:
    """The newest completed run of each mode that shares one `explain_key`."""

    data: str
    backbone: str
    seed: int
    val_per_class: int
    runs: dict[str, Mapping[str, Any]]  # mode -> run, in MODES order

    @property
    def missing(self) -> list[str]:
        return [m for m in MODES if m not in self.runs]

    @property
    def newest(self) -> str:
        return max(str(r.get("created_at") or "") for r in self.runs.values())


def mode_groups(runs: Sequence[Mapping[str, Any]], *, data: str | None = None) -> list[ModeGroup]:
    """Completed runs (on `data` when given) grouped by `explain_key`, the newest run of each mode kept; the groups
    with the most modes first, then the newest. The classroom demo's seed-0 runs (frozen, fine-tuned, scratch) come
    before its frozen-only seeds 1 and 2."""
    groups: dict[tuple, dict[str, Mapping[str, Any]]] = {}
    for r in _newest_first(runs):
        if r.get("status") != "completed" or (data is not None and config_of(r).get("data") != data):
            continue
        mode = str(config_of(r).get("mode"))
        if mode in MODES:
            groups.setdefault(explain_key(r), {}).setdefault(mode, r)
    out = [ModeGroup(*key, runs={m: found[m] for m in MODES if m in found}) for key, found in groups.items()]
    out.sort(key=lambda g: g.newest, reverse=True)
    out.sort(key=lambda g: len(g.runs), reverse=True)  # stable: the newest first among groups of one size
    return out
