"""Runs grouped into the cells of a controlled comparison, and the transfer gap read off them with its spread.

A cell is one setting (data, backbone, mode, freeze depth, labels per class, budget, ...) trained with one or more
seeds: its accuracy is a mean with a spread, never one lucky run. Cells report test accuracy, measured at the
epoch validation chose; a run record without a test accuracy takes no part. The gap compares
cells at the same labels per class: the from-scratch baseline trained to convergence when there is one, and the
fine-tune depth with the best validation accuracy (so the depth is not chosen on the items the gap reports).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tl_core.engine.health import problems
from tl_core.engine.plan import depth_label_of, plan_of

from tl_core.records import config_of, summary_of

PRETRAINED_MODES = ("frozen", "finetune")
#: Config keys that do not make a different setting: the seed is what a cell averages over.
NOT_SETTINGS = frozenset({"seed", "device"})




def depth_of(run: Mapping[str, Any]) -> int | None:
    """The blocks the run kept frozen, from its plan (frozen: every block; scratch: none); a run stored without
    a plan answers from its summary or config."""
    plan = plan_of(run)
    if plan is not None:
        return plan.depth
    d = summary_of(run).get("freeze_depth")
    return d if d is not None else config_of(run).get("freeze_depth")


def budget_of(run: Mapping[str, Any]) -> str:
    cfg = config_of(run)
    return summary_of(run).get("budget") or cfg.get("budget") or ("fixed" if cfg.get("mode") == "frozen" else "converge")


def reportable(run: Mapping[str, Any]) -> bool:
    """Completed, with a test accuracy."""
    return run.get("status", "completed") == "completed" and summary_of(run).get("test_acc") is not None


@dataclass
class Cell:
    """One setting over its seeds (the latest run of each seed counts)."""

    setting: tuple
    runs: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> Mapping[str, Any]:
        return config_of(self.runs[-1])

    @property
    def mode(self) -> str:
        return self.config.get("mode")

    @property
    def labels_per_class(self) -> int | None:
        return self.config.get("labels_per_class")

    @property
    def depth(self) -> int | None:
        """A fine-tune's freeze depth (the sweep's axis), from the run's plan; None for other modes and for surgical
        fine-tuning (one block trains, whatever the depth)."""
        return depth_of(self.runs[-1]) if self.mode == "finetune" and self.config.get("recipe") != "surgical" else None

    @property
    def depth_label(self) -> str:
        """What the plan says about depth in a label: "k=5", "tunes stage3 only", or ""."""
        return depth_label_of(self.runs[-1])

    @property
    def budget(self) -> str:
        return budget_of(self.runs[-1])

    @property
    def seeds(self) -> list[int]:
        return [config_of(r).get("seed", 0) for r in self.runs]

    @property
    def accs(self) -> list[float]:
        return [float(summary_of(r)["test_acc"]) for r in self.runs]

    @property
    def val_accs(self) -> list[float]:
        return [float(summary_of(r).get("best_val_acc") or 0.0) for r in self.runs]

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accs))

    @property
    def std(self) -> float:
        return float(np.std(self.accs, ddof=1)) if self.n > 1 else 0.0

    @property
    def val_mean(self) -> float:
        return float(np.mean(self.val_accs))

    @property
    def findings(self) -> list[dict]:
        """What makes some of its runs no result (tl_core.engine.health.problems)."""
        return [f for r in self.runs for f in problems(summary_of(r).get("health"))]

    @property
    def results(self) -> list[dict]:
        """Findings that are results about the data ("could not learn this from these labels")."""
        return [f for r in self.runs for f in summary_of(r).get("health") or [] if f.get("result")]

    @property
    def unhealthy_runs(self) -> int:
        return sum(bool(problems(summary_of(r).get("health"))) for r in self.runs)

    @property
    def healthy(self) -> bool:
        """Most of its seeds healthy: one bad seed is reported beside the mean, a bad majority is no result."""
        return self.unhealthy_runs * 2 < self.n

    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.accs))

    def to_dict(self) -> dict:
        return {"mode": self.mode, "freeze_depth": self.depth, "labels_per_class": self.labels_per_class,
                "budget": self.budget, "pretrained": bool(self.config.get("pretrained", self.mode != "scratch")),
                "n": self.n, "mean": self.mean, "std": self.std, "accs": self.accs, "seeds": self.seeds,
                "val_mean": self.val_mean, "unhealthy_runs": self.unhealthy_runs}


def setting_of(run: Mapping[str, Any]) -> tuple:
    cfg = dict(config_of(run))
    cfg["freeze_depth"] = depth_of(run) if cfg.get("mode") == "finetune" else None
    cfg["budget"] = budget_of(run)
    # A setting left unset (None) is the same setting whether or not the run was recorded before it existed.
    return tuple(sorted((k, repr(v)) for k, v in cfg.items() if k not in NOT_SETTINGS and v is not None))


def one_comparison(runs: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """The reportable runs of one data set and backbone: those of the most recent reportable run."""
    done = sorted((r for r in runs or [] if reportable(r)), key=lambda r: str(r.get("created_at") or ""))
    if not done:
        return []
    key = lambda r: (config_of(r).get("data"), config_of(r).get("backbone"))  # noqa: E731
    return [r for r in done if key(r) == key(done[-1])]


def cells(runs: Iterable[Mapping[str, Any]] | None) -> list[Cell]:
    """The runs of one comparison (see `one_comparison`) grouped by setting, oldest first; a repeated seed keeps
    its latest run."""
    by_setting: dict[tuple, dict[int, Mapping[str, Any]]] = {}
    for run in one_comparison(runs):
        by_setting.setdefault(setting_of(run), {})[config_of(run).get("seed", 0)] = run
    return [Cell(k, [v[s] for s in sorted(v)]) for k, v in by_setting.items()]


@dataclass(frozen=True)
class Gap:
    """A pretrained cell minus the from-scratch cell at the same labels per class, in accuracy (0-1)."""

    pretrained: Cell
    scratch: Cell

    @property
    def paired(self) -> list[float]:
        """Per-seed differences where both cells have the seed (same split, same initial head)."""
        a, b = self.pretrained.by_seed(), self.scratch.by_seed()
        return [a[s] - b[s] for s in sorted(set(a) & set(b))]

    @property
    def mean(self) -> float:
        return self.pretrained.mean - self.scratch.mean

    @property
    def std(self) -> float:
        """Spread of the gap over seeds: of the paired differences, else of the two cells combined."""
        if len(self.paired) >= 2:
            return float(np.std(self.paired, ddof=1))
        return math.sqrt(self.pretrained.std ** 2 + self.scratch.std ** 2)

    @property
    def n(self) -> int:
        return min(self.pretrained.n, self.scratch.n)

    @property
    def ci95(self) -> tuple[float, float] | None:
        """Student-t interval: paired over common seeds, else Welch's; None with a single seed on either side."""
        from scipy import stats

        d = self.paired
        if len(d) >= 2 and len(d) == self.n:
            half = stats.t.ppf(0.975, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d))
            return (float(np.mean(d) - half), float(np.mean(d) + half))
        a, b = self.pretrained, self.scratch
        if a.n < 2 or b.n < 2:
            return None
        va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
        if va + vb == 0:
            return (self.mean, self.mean)
        df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
        half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
        return (self.mean - half, self.mean + half)

    def to_dict(self) -> dict:
        ci = self.ci95
        return {"labels_per_class": self.pretrained.labels_per_class, "pretrained_mode": self.pretrained.mode,
                "freeze_depth": self.pretrained.depth, "scratch_budget": self.scratch.budget,
                "n": self.n, "gap_mean": self.mean, "gap_std": self.std, "gap_ci95": list(ci) if ci else None,
                "healthy": self.pretrained.healthy and self.scratch.healthy}


def pick_scratch(group: Sequence[Cell]) -> Cell | None:
    """The fair baseline: trained to convergence when there is one; then the most seeds."""
    candidates = [c for c in group if c.mode == "scratch"]
    return max(candidates, key=lambda c: (c.budget == "converge", c.n, c.mean), default=None)


def pick_pretrained(group: Sequence[Cell], mode: str) -> Cell | None:
    """The cell of `mode` with the best mean validation accuracy (for fine-tuning: the best freeze depth)."""
    candidates = [c for c in group if c.mode == mode and c.config.get("pretrained", True)]
    return max(candidates, key=lambda c: (c.val_mean, c.n), default=None)


def by_labels(all_cells: Sequence[Cell]) -> dict[Any, list[Cell]]:
    out: dict[Any, list[Cell]] = {}
    for c in all_cells:
        out.setdefault(c.labels_per_class, []).append(c)
    return out


def gaps(all_cells: Sequence[Cell]) -> list[Gap]:
    """For every labels-per-class value with a baseline: frozen minus scratch and best fine-tune minus scratch."""
    out = []
    for _, group in sorted(by_labels(all_cells).items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        scratch = pick_scratch(group)
        if scratch is None:
            continue
        for mode in PRETRAINED_MODES:
            cell = pick_pretrained(group, mode)
            if cell is not None:
                out.append(Gap(cell, scratch))
    return out


def crossover(all_cells: Sequence[Cell], mode: str) -> Any | None:
    """The smallest labels-per-class value from which the fair scratch baseline matches or beats `mode` (and keeps
    doing so at every larger value measured): where transfer stops paying. None if it never does."""
    points = []
    for lpc, group in by_labels(all_cells).items():
        pre, scratch = pick_pretrained(group, mode), pick_scratch(group)
        if lpc is not None and pre is not None and scratch is not None:
            points.append((lpc, scratch.mean >= pre.mean))
    points.sort()
    first = None
    for lpc, caught_up in points:
        if caught_up and first is None:
            first = lpc
        elif not caught_up:
            first = None
    return first
