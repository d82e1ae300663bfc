"""Rank every available backbone on the chosen data before training any of them.

Each backbone scores the pooled features a frozen run would cache (the same `prepare` and the same
`_boundary_activations`, so the same items, image size and preprocessing as `train`), with LogME and the
regularised H-score (tl_core.engine.transferability). The scores only order backbones on one data set: a LogME of
0.4 here says nothing about a LogME of 0.4 on other data.

Scoring reads at most `max_per_class` training items per class: the first ones of each class's shuffled training
pool, which are exactly the training items of a run with that many labels per class (data.make_split takes a
prefix), so they are a subset of the items any run on these settings trains on. A thousand items rank as the full
set does (docs/results.md) at a tenth of the forward passes. Features are kept in a small in-process memo, so ranking again
(another student, the same settings) costs only the scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from tl_core.config import TrainConfig
from tl_core.engine import activation_cache, training, transferability
from tl_core.errors import ConfigError, UserError
from tl_core.events import (BackboneScored, CancelToken, Cancelled, EventHandler, Message, ScoreProgress)
from tl_core.inputs import data
from tl_core.models import backbones

DEFAULT_PER_CLASS = 100  # training items per class the scores read (0 or None: all of them)
MEMO_ENTRIES = 16  # feature matrices kept per process: 16 x 1,000 items x 1,280 floats is about 80 MB


@dataclass
class BackboneScore:
    name: str
    pretrained: bool
    logme: float
    hscore: float
    seconds: float  # this backbone's features and scores (a memo hit: the scores only)
    image_size: int | None = None  # vision: the size its features were computed at
    feature_dim: int = 0
    reused_features: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "pretrained": self.pretrained, "logme": self.logme, "hscore": self.hscore,
                "seconds": round(self.seconds, 2), "image_size": self.image_size}


@dataclass
class Ranking:
    """Scores sorted best first (by LogME), and what they were computed on."""

    data: str
    kind: str  # image | text
    items: int  # training items each backbone was scored on
    per_class: int | None  # the cap on items per class (None: every training item)
    labels_per_class: int | None  # the settings' own label budget: the runs whose accuracies the scores predict
    val_per_class: int
    test_per_class: int
    max_length: int
    scores: list[BackboneScore] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # backbones whose weights are not on this machine
    status: str = "completed"  # completed | cancelled
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"backbones": [s.to_dict() for s in self.scores], "data": self.data, "kind": self.kind,
                "items": self.items, "per_class": self.per_class, "labels_per_class": self.labels_per_class,
                "skipped": self.skipped, "status": self.status, "seconds": round(self.seconds, 2)}


def available(family: str) -> tuple[list[str], list[str]]:
    """(backbones of `family` whose pretrained weights load offline: bundled or cached, the others)."""
    names = backbones.list_names(family)
    ready = [n for n in names if backbones.weights_status(n) != "download"]
    return ready, [n for n in names if n not in ready]


def candidates(kind: str, *, names: list[str] | None = None,
               include_random: bool = False) -> tuple[list[tuple[str, bool]], list[str]]:
    """(name, pretrained) pairs to score, and the skipped names. `names` picks some; each must be available.
    Random-init copies are added for vision only: a random transformer's mean-pooled tokens are not a baseline
    anyone would train on."""
    family = "vision" if kind == "image" else "text"
    ready, missing = available(family)
    if names:
        for name in names:
            spec = backbones.get_spec(name)  # unknown names: a BackboneError that says how to list them
            if spec.family != family:
                raise ConfigError(f"{name} is a {spec.family} backbone but the data holds {kind}s")
            if name not in ready:
                raise backbones.WeightsUnavailable(
                    f"{name}: pretrained weights are not on this machine, so it cannot be scored; "
                    f"available: {', '.join(ready) or 'none'}")
        ready, missing = [n for n in ready if n in names], []
    if not ready:
        raise UserError(f"no {family} backbone has its weights on this machine: nothing to rank")
    pairs = [(n, True) for n in ready]
    if include_random and family == "vision":
        pairs += [(n, False) for n in ready]
    return pairs, missing


def frozen_config(config: TrainConfig, name: str, pretrained: bool, labels_per_class: int | None) -> TrainConfig:
    """The feature-extraction run on `config`'s data and split whose features a score reads and whose test
    accuracy it predicts. Only the data, split and input settings carry over: whatever recipe, mode or budget the
    page has selected for training, ranking reads plain frozen features."""
    return dataclasses.replace(config, backbone=name, mode="frozen", pretrained=pretrained, freeze_depth=None,
                               lp_ft=False, recipe=None, surgical_block=None, budget=None, augment=False,
                               labels_per_class=labels_per_class)


# ---- the feature memo ---------------------------------------------------------------------------------------
_memo: OrderedDict[tuple, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()


def _memo_get(key: tuple) -> np.ndarray | None:
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    return None


def _memo_put(key: tuple, features: np.ndarray) -> None:
    with _memo_lock:
        _memo[key] = features
        while len(_memo) > MEMO_ENTRIES:
            _memo.popitem(last=False)


def clear_memo() -> None:
    with _memo_lock:
        _memo.clear()


def _feature_key(cfg: TrainConfig, ds: data.Dataset, train_idx: np.ndarray) -> tuple:
    """What the features depend on: the data (by name and the items' labels), the items, the network and its input."""
    items = hashlib.sha256(train_idx.tobytes() + ds.labels[train_idx].tobytes()).hexdigest()
    return (cfg.data, ds.name, len(ds), cfg.text_column, cfg.label_column, cfg.backbone, cfg.pretrained,
            cfg.seed if not cfg.pretrained else None, cfg.image_size, cfg.max_length, items)


# ---- scoring --------------------------------------------------------------------------------------------------
def _cap(labels_per_class: int | None, max_per_class: int | None) -> int | None:
    if not max_per_class:
        return labels_per_class
    return max_per_class if labels_per_class is None else min(labels_per_class, max_per_class)


def _features(prep: training.Prepared, report, cancel: CancelToken) -> np.ndarray:
    """Pooled features of the training items, one evaluation batch at a time (cancel and progress per batch).

    Read from and written to the shared activation cache under the very key a frozen run on these items uses
    (the same batches, so the same values): ranking then training, or training then ranking, runs the backbone
    once. A computed set counts one forward pass."""
    n = training._length(prep.x_train)
    shared = training._shared_activations(prep)
    key = shared.keys["train"] if shared is not None and activation_cache.enabled() else None
    cached = activation_cache.read(key) if key else None
    if cached is not None:
        activation_cache.count("hits")
        report(n, n)
        cancel.check()
        return cached.double().numpy()
    out, done = [], 0
    for batch in training._batches(prep.x_train):
        cancel.check()
        out.append(training._boundary_activations(prep, batch))
        done += training._length(batch)
        report(done, n)
    features = torch.cat(out)
    activation_cache.count("forward_passes")
    if key:
        activation_cache.write(key, features)
    return features.double().cpu().numpy()


def rank_backbones(config: TrainConfig, *, dataset: data.Dataset | None = None, names: list[str] | None = None,
                   include_random: bool = False, max_per_class: int | None = DEFAULT_PER_CLASS,
                   callbacks: list[EventHandler] = (), cancel: CancelToken | None = None) -> Ranking:
    """Score each available backbone on `config`'s data, split, image size and max length (its backbone and
    mode are ignored). Cancelling returns the scores finished so far with status "cancelled"."""
    start = time.perf_counter()
    cancel = cancel or CancelToken()
    emit = training._emitter(callbacks)
    try:
        config.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if max_per_class is not None and max_per_class < 0:
        raise ConfigError("--max-per-class must be 0 (all) or more")
    ds = dataset if dataset is not None else data.load_dataset(
        config.data, text_column=config.text_column, label_column=config.label_column)
    pairs, skipped = candidates(ds.kind, names=names, include_random=include_random)
    per_class = _cap(config.labels_per_class, max_per_class)
    split = data.make_split(ds, val_per_class=config.val_per_class, test_per_class=config.test_per_class,
                            labels_per_class=per_class, seed=config.seed)
    ranking = Ranking(config.data, ds.kind, len(split.train), per_class, config.labels_per_class,
                      config.val_per_class, config.test_per_class, config.max_length, skipped=skipped)
    for name in skipped:
        emit(Message(f"{name}: weights not on this machine, not scored"))
    try:
        for index, (name, pretrained) in enumerate(pairs, 1):
            cancel.check()
            t0 = time.perf_counter()
            cfg = frozen_config(config, name, pretrained, per_class)
            training.resolve(cfg, ds)
            key = _feature_key(cfg, ds, split.train)
            features = _memo_get(key)
            reused = features is not None
            if features is None:
                emit(Message(f"{name} ({'pretrained' if pretrained else 'random init'}): "
                             f"pooled features of {len(split.train)} training items…"))

                def report(done, n, name=name, pretrained=pretrained, index=index):
                    emit(ScoreProgress(name, pretrained, index, len(pairs), done, n, time.perf_counter() - start))

                prep = training.prepare(cfg, ds)
                features = _features(prep, report, cancel)
                del prep
                _memo_put(key, features)
            labels = ds.labels[split.train]
            score = BackboneScore(name, pretrained, *transferability.score_items(features, labels), 0.0,
                                  cfg.image_size if ds.kind == "image" else None, features.shape[1], reused)
            score.seconds = time.perf_counter() - t0
            ranking.scores.append(score)
            emit(BackboneScored(name, pretrained, score.logme, score.hscore, score.seconds, index, len(pairs)))
    except Cancelled:
        ranking.status = "cancelled"
    ranking.scores.sort(key=lambda s: (s.logme, s.hscore), reverse=True)
    ranking.seconds = time.perf_counter() - start
    return ranking
