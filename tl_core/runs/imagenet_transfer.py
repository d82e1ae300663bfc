"""Do better ImageNet models transfer better? A ranking's backbones set against the runs that answer it.

Kornblith et al. (CVPR 2019) asked it over 16 networks and 12 data sets. Here the class asks it over the backbones
whose weights are on the machine, on its own data: each scored backbone's ImageNet top-1 (as published with its
weights), its LogME and H-score (tl_core.engine.ranking) and the mean and spread over seeds of the test accuracy
of its feature-extraction runs on the ranking's settings, the very runs `rank_agreement` checks the ranking
against (`rank_agreement.matches`). One pure function turns a Ranking and stored run records into that table and
its statistics, so the CLI (`rank --check`), the Model page and the tests read the same numbers.

Statistics come from scipy.stats: Pearson's r between ImageNet top-1 and the frozen test mean over the pretrained
backbones that have both (random-init copies have no ImageNet accuracy), and Kendall's tau between LogME and the
frozen test mean over every backbone with a healthy run, as the ranking's own check computes it. Each seed counts
once (its newest run); `missing` lists the frozen runs a check still has to train, so a finished run is never
trained twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from tl_core.config import TrainConfig
from tl_core.engine.ranking import BackboneScore, Ranking, frozen_config
from tl_core.engine.transferability import rank_agreement
from tl_core.errors import ConfigError
from tl_core.models import backbones
from tl_core.records import summary_of
from tl_core.runs.rank_agreement import MIN_BACKBONES, healthy, matches, test_acc

MAX_SEEDS = 10  # a check trains backbones x seeds runs: more is a sweep, not a check


@dataclass
class Measure:
    """One backbone's test accuracy in one mode over seeds (healthy runs only)."""

    mean: float | None = None
    std: float | None = None  # sample standard deviation over seeds; None below two
    n: int = 0  # seeds with a healthy run
    unhealthy: int = 0  # seeds whose run was flagged unhealthy (one class predicted, stuck at chance): not read
    seeds: list[int] = field(default_factory=list)


@dataclass
class Row:
    name: str
    pretrained: bool
    arch: str  # the family (MobileNet, EfficientNet): four backbones from two families are not sixteen
    imagenet_acc1: float | None  # None for a random-init copy and where unknown
    logme: float
    hscore: float
    frozen: Measure
    finetune: Measure  # fine-tuning runs on the same settings (any depth), where the store holds some

    def to_dict(self) -> dict:
        return {"name": self.name, "pretrained": self.pretrained, "arch": self.arch,
                "imagenet_acc1": self.imagenet_acc1, "logme": self.logme, "hscore": self.hscore,
                "frozen_test_mean": self.frozen.mean, "frozen_test_std": self.frozen.std, "n": self.frozen.n,
                "unhealthy": self.frozen.unhealthy, "seeds": self.frozen.seeds,
                "finetune_test_mean": self.finetune.mean, "finetune_test_std": self.finetune.std,
                "finetune_n": self.finetune.n}


@dataclass
class TransferTable:
    data: str
    labels_per_class: int | None
    seeds: list[int] | None  # the seeds read (None: every seed in the store)
    n_classes: int | None
    rows: list[Row]
    kendall: dict  # LogME vs frozen test mean: {"kendall_tau", "p_value", "weighted_tau", "n"}
    hscore_kendall: dict
    pearson: dict  # ImageNet top-1 vs frozen test mean, pretrained only: {"r", "p_value", "n"}
    kendall_top1: dict  # the same pairs, by rank: {"kendall_tau", "p_value", "weighted_tau", "n"}

    def points(self, mode: str = "frozen") -> list[Row]:
        """Pretrained rows with both an ImageNet top-1 and a measured `mode` accuracy: what r is computed on."""
        return [r for r in self.rows if r.pretrained and r.imagenet_acc1 is not None
                and getattr(r, mode).mean is not None]

    def families(self) -> list[str]:
        return sorted({r.arch for r in self.points()})

    def pretraining_gain(self) -> float | None:
        """Mean frozen accuracy of the pretrained backbones minus that of the random-init copies (both measured):
        near zero, ImageNet features bring this data nothing (domain mismatch)."""
        pre = [r.frozen.mean for r in self.rows if r.pretrained and r.frozen.mean is not None]
        rnd = [r.frozen.mean for r in self.rows if not r.pretrained and r.frozen.mean is not None]
        return float(np.mean(pre) - np.mean(rnd)) if pre and rnd else None

    def to_dict(self) -> dict:
        return {"data": self.data, "labels_per_class": self.labels_per_class, "seeds": self.seeds,
                "n_classes": self.n_classes, "mode": "frozen", "backbones": [r.to_dict() for r in self.rows],
                "kendall_tau": self.kendall["kendall_tau"], "kendall_p": self.kendall["p_value"],
                "kendall_n": self.kendall["n"], "weighted_tau": self.kendall["weighted_tau"],
                "hscore_kendall_tau": self.hscore_kendall["kendall_tau"],
                "hscore_kendall_p": self.hscore_kendall["p_value"],
                "pearson_r_top1": self.pearson["r"], "pearson_p_top1": self.pearson["p_value"],
                "pearson_n_top1": self.pearson["n"], "kendall_tau_top1": self.kendall_top1["kendall_tau"],
                "kendall_p_top1": self.kendall_top1["p_value"], "families": self.families(),
                "pretraining_gain": self.pretraining_gain()}


def imagenet_acc1(name: str, pretrained: bool) -> float | None:
    """The ImageNet top-1 (%) published with `name`'s weights; None for a random-init copy (it never saw ImageNet),
    a text backbone, or a name the registry does not know."""
    if not pretrained:
        return None
    try:
        return backbones.info(name).imagenet_acc1
    except backbones.BackboneError:  # an unknown name has no published accuracy
        return None


def seed_list(first: int, seeds: int) -> list[int]:
    """The seeds a check trains and reads: first, first + 1, ... (each another split and head), refused outside
    1..MAX_SEEDS with a message that names the flag."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds must be between 1 and {MAX_SEEDS} (got {seeds})")
    return list(range(first, first + seeds))


def check_configs(ranking: Ranking, base: TrainConfig, seeds: int) -> list[TrainConfig]:
    """The feature-extraction run of every scored backbone at seeds base.seed .. base.seed + seeds - 1, on the
    ranking's data, split and input size (`frozen_config`: the run the ranking's own check trains)."""
    out = []
    for seed in seed_list(base.seed, seeds):
        for s in ranking.scores:
            config = frozen_config(dataclasses.replace(base, seed=seed), s.name, s.pretrained,
                                   ranking.labels_per_class)
            if s.image_size is not None:
                config.image_size = s.image_size
            out.append(config)
    return out


def missing(ranking: Ranking, base: TrainConfig, records: Iterable[dict], seeds: int) -> list[TrainConfig]:
    """`check_configs` less those a completed run on the same settings and seed already answers (healthy or not:
    a seed's run is deterministic, training it again gives the same verdict)."""
    records = list(records)
    done = set()
    for s in ranking.scores:
        done |= {(s.name, s.pretrained, (r.get("config") or {}).get("seed", 0))
                 for r in records if matches(r, ranking, s, "frozen")}
    return [c for c in check_configs(ranking, base, seeds) if (c.backbone, c.pretrained, c.seed) not in done]


def _measure(records: list[dict], ranking: Ranking, score: BackboneScore, mode: str,
             seeds: list[int] | None) -> Measure:
    newest: dict[int, dict] = {}
    for r in records:  # the store lists the newest first: each seed keeps its newest run
        seed = (r.get("config") or {}).get("seed", 0)
        if (seeds is None or seed in seeds) and seed not in newest and matches(r, ranking, score, mode):
            newest[seed] = r
    good = {seed: test_acc(r) for seed, r in sorted(newest.items()) if healthy(r)}
    accs = list(good.values())
    return Measure(float(np.mean(accs)) if accs else None, float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
                   len(accs), len(newest) - len(accs), list(good))


def _defined(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def pearson(x: list[float], y: list[float]) -> dict:
    """Pearson's r and its two-sided p-value; None below MIN_BACKBONES points or where either side is constant."""
    if len(x) < MIN_BACKBONES or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"r": None, "p_value": None, "n": len(x)}
    result = stats.pearsonr(x, y)
    return {"r": _defined(result.statistic), "p_value": _defined(result.pvalue), "n": len(x)}


def critical_r(n: int, alpha: float = 0.05) -> float | None:
    """The smallest |r| that n points make significant at `alpha` (two-sided): 0.95 for four points."""
    if n < MIN_BACKBONES:
        return None
    t = stats.t.ppf(1 - alpha / 2, n - 2)
    return float(t / np.sqrt(n - 2 + t * t))


def _n_classes(records: list[dict]) -> int | None:
    for r in records:
        classes = summary_of(r).get("classes")
        if classes:
            return len(classes)
    return None


def transfer_table(ranking: Ranking, records: Iterable[dict], *, seeds: Iterable[int] | None = None) -> TransferTable:
    """Every scored backbone with its ImageNet top-1, scores and measured accuracies over `seeds` (None: every seed
    the store holds), and the statistics; pure: the same ranking and records give the same table."""
    records = [r for r in records if (r.get("config") or {}).get("data") == ranking.data]
    wanted = sorted(set(seeds)) if seeds is not None else None
    rows = []
    for s in ranking.scores:
        family = _arch(s.name)
        rows.append(Row(s.name, s.pretrained, family, imagenet_acc1(s.name, s.pretrained), s.logme, s.hscore,
                        _measure(records, ranking, s, "frozen", wanted),
                        _measure(records, ranking, s, "finetune", wanted) if s.pretrained else Measure()))
    have = [r for r in rows if r.frozen.mean is not None]
    table = TransferTable(ranking.data, ranking.labels_per_class, wanted,
                          _n_classes([r for r in records if r.get("status") == "completed"]), rows,
                          rank_agreement([r.logme for r in have], [r.frozen.mean for r in have]),
                          rank_agreement([r.hscore for r in have], [r.frozen.mean for r in have]), {}, {})
    points = table.points()
    top1, acc = [r.imagenet_acc1 for r in points], [r.frozen.mean for r in points]
    table.pearson = pearson(top1, acc)
    table.kendall_top1 = rank_agreement(top1, acc)
    return table


def _arch(name: str) -> str:
    try:
        return backbones.info(name).arch
    except backbones.BackboneError:  # a name the registry no longer knows: its own family
        return name
