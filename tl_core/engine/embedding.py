"""What a network's features look like: the pooled features of a set of items, a 2-D map of them, and how well
they separate the classes.

A 2-D map (PCA or t-SNE) is a picture, not a measurement: t-SNE in particular can draw clusters that are not there
and hide ones that are. So the number a page reads is measured in the full feature space, where the head works:

* k-NN accuracy: each item is classified by the vote of its k nearest items (cosine distance), scored by repeated
  stratified k-fold cross-validation over the items. The same folds for two feature spaces (same labels, same
  seed), so "before" and "after" are compared fold by fold.
* silhouette score (scikit-learn, cosine): how much closer an item is to its own class than to the nearest other
  one, from -1 to 1.

Both are computed on L2-normalised features: the geometry cosine distance sees, which is also what the maps draw.
scikit-learn runs on one thread here: on a shared 2-core machine its OpenMP threads spun against the busy cores and
made a 200-item t-SNE take 67 s instead of 3 s.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from tl_core.errors import UserError

METHODS = ("pca", "tsne")
KNN_K = 5
FOLDS = 5
REPEATS = 3
BATCH = 64
#: t-SNE's perplexity, lowered for small sets (it must stay below the number of items).
TSNE_PERPLEXITY = 30.0


@contextmanager
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@torch.no_grad()
def features_and_logits(model, x, batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features [n, d] (what the head sees) and logits [n, classes] of `model` on `x`, in eval mode.

    `x` is what training feeds the model: uint8 images [n, 3, S, S] (normalised here) or a tokenizer's dict."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    feats, logits = [], []
    try:
        n = len(x["input_ids"]) if isinstance(x, dict) else len(x)
        for start in range(0, n, batch):
            if isinstance(x, dict):
                part = {k: v[start:start + batch].to(device) for k, v in x.items()}
            else:
                part = model.vision_input(x[start:start + batch].to(device))
            f = model.features(part).float()
            feats.append(f.cpu())
            logits.append(model.get_head()(f).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def _unit_rows(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class Separation:
    """How well a feature space separates the classes. `knn_folds` are per-fold accuracies (None: too few items)."""

    knn_acc: float | None
    knn_std: float | None
    silhouette: float | None
    k: int
    folds: int
    repeats: int
    knn_folds: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {"knn_acc": self.knn_acc, "knn_std": self.knn_std, "silhouette": self.silhouette, "k": self.k,
                "folds": self.folds, "repeats": self.repeats}


def separation(features: np.ndarray, labels: np.ndarray, *, k: int = KNN_K, folds: int = FOLDS,
               repeats: int = REPEATS, seed: int = 0) -> Separation:
    """k-NN accuracy (repeated stratified k-fold, mean and std over the folds) and the silhouette score."""
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    x, y = _unit_rows(features), np.asarray(labels)
    counts = np.bincount(y)
    present = counts[counts > 0]
    n_splits = int(min(folds, present.min())) if len(present) >= 2 else 0
    knn_folds: tuple[float, ...] = ()
    k_used = k
    silhouette = None
    with _one_thread():
        if n_splits >= 2:
            k_used = max(1, min(k, len(y) - len(y) // n_splits - 1))  # never more neighbours than a fold trains on
            cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=repeats, random_state=seed)
            scores = cross_val_score(KNeighborsClassifier(n_neighbors=k_used), x, y, cv=cv, scoring="accuracy")
            knn_folds = tuple(float(s) for s in scores)
        if 2 <= len(present) <= len(y) - 1:
            silhouette = float(silhouette_score(x, y, metric="cosine"))
    return Separation(
        knn_acc=float(np.mean(knn_folds)) if knn_folds else None,
        knn_std=float(np.std(knn_folds)) if knn_folds else None,
        silhouette=silhouette, k=k_used, folds=n_splits if knn_folds else 0, repeats=repeats if knn_folds else 0,
        knn_folds=knn_folds)


@dataclass(frozen=True)
class Change:
    """After minus before, fold by fold (the same folds): mean and standard error of the k-NN accuracy gain."""

    knn_gain: float | None
    knn_gain_se: float | None
    silhouette_gain: float | None

    @property
    def direction(self) -> str:
        """'more', 'less' or 'same': a gain counts when it is at least 2 points and 2 standard errors (a rule of
        thumb: the repeated folds overlap, so the standard error is, if anything, too small)."""
        g, se = self.knn_gain, self.knn_gain_se
        if g is None:
            return "same"
        margin = max(0.02, 2 * (se or 0.0))
        return "more" if g >= margin else "less" if g <= -margin else "same"


def change(before: Separation, after: Separation) -> Change:
    sil = None if before.silhouette is None or after.silhouette is None else after.silhouette - before.silhouette
    if not before.knn_folds or len(before.knn_folds) != len(after.knn_folds):
        return Change(None, None, sil)
    d = np.asarray(after.knn_folds) - np.asarray(before.knn_folds)
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return Change(float(d.mean()), se, sil)


@dataclass(frozen=True)
class Projection:
    xy: np.ndarray  # float [n, 2]
    method: str
    explained: float | None  # PCA: the share of the variance the two axes keep


def project(features: np.ndarray, method: str = "pca", *, seed: int = 0) -> Projection:
    """A 2-D map of the (L2-normalised) features: PCA, or t-SNE started from PCA with a seeded layout."""
    if method not in METHODS:
        raise UserError(f"unknown method '{method}': use one of {', '.join(METHODS)}")
    x = _unit_rows(features)
    n = len(x)
    if n < 4:
        raise UserError(f"a map needs at least 4 items, got {n}: use more validation items per class")
    from sklearn.decomposition import PCA

    with _one_thread():
        if method == "pca":
            pca = PCA(n_components=2, random_state=seed).fit(x)
            return Projection(pca.transform(x).astype(np.float32), "pca", float(pca.explained_variance_ratio_.sum()))
        from sklearn.manifold import TSNE

        perplexity = min(TSNE_PERPLEXITY, (n - 1) / 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return Projection(xy.astype(np.float32), "tsne", None)
