"""Fit a new linear head on frozen features to convergence: the linear-probe protocol of Kornblith et al. (2019).

A head trained by a few epochs of minibatch AdamW stops short of what the frozen features can do, which makes
feature extraction look worse than it is (six points on a held-out set). On cached features the whole problem is
a small convex one: multinomial logistic regression, solved by scikit-learn's L-BFGS, with its L2 strength chosen
by stratified k-fold cross-validation on the training items alone (never on validation or test). It is the same
estimator `bench/bench_linear_probe.py` uses as the yardstick, so the comparison is like for like.

The fit is exact in a smaller space: an L2-regularised linear model's weights lie in the span of its training
features (the representer theorem), so with fewer items than feature dimensions every fit runs on the items'
coordinates in an orthonormal basis of that span (`Span`), and the weights map back at the end: for 250 items of
1,280-d features, the same solution for a fraction of the work.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tl_core.engine import activation_cache

#: Inverse regularisation strengths tried by cross-validation (scikit-learn's C: loss summed, ||W||^2 / 2).
C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-2, 2, 5))
CV_MAX_ITER = 100  # choosing C needs the accuracy of each fit, not its last digits
DEFAULT_C = 1.0  # when a class has a single training item there is nothing to cross-validate
#: LP-FT's probe stays strongly regularised: fine-tuning with AdamW moves a near-separable probe's large weights so
#: far in its first steps that it starts worse than a random head. On the scaled features (`Span`) of digits at 8
#: labels per class, the first fine-tuning epoch's loss is 1.83 from a probe at C = 0.01, 2.40 at C = 0.1, and 2.39
#: from a random head.
LP_FT_GRID: tuple[float, ...] = tuple(c for c in C_GRID if c <= 0.01)
CV_FOLDS = 5
#: L-BFGS iterations of the final fit, spread over the run's epochs (the curve's points).
FIT_MAX_ITER = 300


class Span:
    """The training features centred and scaled by one number (their root-mean-square spread over the training
    items), in an orthonormal basis of their span (or none, when they fill the space).

    The scaling makes the L2 penalty mean the same whatever the features' overall size: pooled features of a
    random-init backbone are about 1e-8 in norm, and an unscaled penalty flattens any head fitted on them to one
    class, so "pretrained features against random features" could not be shown. One number for every dimension,
    not one each: the pretrained features' own weighting of their dimensions is kept (per-dimension
    standardisation cost pretrained MobileNetV2 features 1.6 points on animals, see docs/results.md). It is folded
    into the real head's weights (`to_full`), so the model stays a plain linear head.
    """

    def __init__(self, f_train: torch.Tensor):
        f = f_train.detach().double().cpu()
        n, d = f.shape
        self.mean = f.mean(0)
        spread = float((f - self.mean).pow(2).mean().sqrt()) if n > 1 else 0.0
        self.scale = spread if spread > 0 else 1.0  # all items alike: nothing to scale
        self.basis = None
        if n < d:
            _, s, vh = torch.linalg.svd((f - self.mean) / self.scale, full_matrices=False)
            keep = s > s[0] * 1e-7 if len(s) else s > 0
            self.basis = vh[keep].T.contiguous()  # d x r, float64

    def project(self, f: torch.Tensor) -> np.ndarray:
        """Coordinates in the span, as the float64 array scikit-learn fits on."""
        z = (f.detach().double().cpu() - self.mean) / self.scale
        return (z if self.basis is None else z @ self.basis).numpy()

    def to_full(self, coef: np.ndarray, intercept: np.ndarray, head: nn.Linear) -> None:
        """Write a fit in the span into the real head (the same probabilities for every input).

        scikit-learn keeps one row for two classes (the logit of class 1 over class 0): it becomes +/- half of it.
        """
        w, b = torch.from_numpy(coef), torch.from_numpy(intercept)
        if len(w) == 1:
            w, b = torch.cat([-w / 2, w / 2]), torch.cat([-b / 2, b / 2])
        w = (w if self.basis is None else w @ self.basis.T) / self.scale  # on the raw features
        with torch.no_grad():
            head.weight.copy_(w)
            head.bias.copy_(b - w @ self.mean)

    def from_full(self, head: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
        w, b = head.weight.detach().double().cpu(), head.bias.detach().double().cpu()
        b = b + w @ self.mean
        w = w * self.scale
        w, b = (w if self.basis is None else w @ self.basis).numpy(), b.numpy()
        if len(w) == 2:  # scikit-learn's binary form
            w, b = w[1:] - w[:1], b[1:] - b[:1]
        return w, b


@contextlib.contextmanager
def _quiet():
    """Slices of a fit stop at their iteration budget on purpose: that is not a warning a student should see.

    One BLAS thread: on these small matrices a second thread costs more than it brings (a 200-iteration fit took
    2.0 s with two OpenBLAS threads on two cores, 0.15 s with one).
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def choose_c(f: torch.Tensor, y: torch.Tensor, n_classes: int, *, seed: int = 0, grid: tuple[float, ...] = C_GRID,
             check: Callable[[], None] = lambda: None) -> tuple[float, dict[float, float]]:
    """The C with the best mean k-fold accuracy on the training items (ties: the stronger regularisation).

    Returns (C, {C: mean CV accuracy}); scikit-learn walks each fold's C path with warm starts. The search is most
    of a frozen run's time (about 1 s of 1.6 s) and its answer depends only on its inputs, so it is kept in the
    shared activation cache, keyed by the features' and labels' bytes and every setting of the search: a class of
    thirty frozen runs on one built-in set searches once, and a server's warm-up searches for the demo's first run.
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    labels = y.cpu().numpy()
    smallest = np.bincount(labels, minlength=n_classes).min()
    if smallest < 2:
        return DEFAULT_C, {}
    n_folds = min(CV_FOLDS, int(smallest))
    key = _search_key(f, labels, seed=seed, grid=grid, folds=n_folds)
    known = activation_cache.read(key) if activation_cache.enabled() else None
    if known is not None and known.shape == (len(grid),):
        mean = known.numpy()
    else:
        check()
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with _quiet():
            cv = LogisticRegressionCV(Cs=list(grid), l1_ratios=(0.0,), cv=folds, scoring="accuracy",
                                      max_iter=CV_MAX_ITER, refit=False, use_legacy_attributes=False
                                      ).fit(Span(f).project(f), labels)
        mean = cv.scores_[:, 0, :].mean(0)  # folds x l1 ratios x Cs
        activation_cache.write(key, torch.from_numpy(np.ascontiguousarray(mean, dtype=np.float64)))
    scores = {c: float(s) for c, s in zip(grid, mean)}
    best = max(grid, key=lambda c: (round(scores[c], 9), -c))
    return best, scores


def _search_key(f: torch.Tensor, labels: np.ndarray, **settings) -> str:
    """Everything `choose_c`'s answer depends on: the inputs' bytes, the search's settings, scikit-learn's version."""
    import sklearn

    digest = hashlib.sha256(f"head-cv|scaled|{sklearn.__version__}|{CV_MAX_ITER}|{sorted(settings.items())}|"
                            f"{tuple(f.shape)}|{f.dtype}|".encode())
    digest.update(f.detach().float().cpu().contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return "cv-" + digest.hexdigest()


def iterations_per_epoch(epochs: int) -> int:
    return max(1, math.ceil(FIT_MAX_ITER / max(1, epochs)))


class Fit:
    """The final fit of a real head, from its seeded initial weights, in slices of L-BFGS iterations (one slice
    per epoch, so the live curve grows); `head` holds the current solution after every slice."""

    def __init__(self, head: nn.Linear, f_train: torch.Tensor, y_train: torch.Tensor, c: float, iterations: int):
        from sklearn.linear_model import LogisticRegression

        self.head, self.span = head, Span(f_train)
        self.z, self.y = self.span.project(f_train), y_train.cpu().numpy()
        self.clf = LogisticRegression(C=c, max_iter=iterations, warm_start=True)
        self.clf.coef_, self.clf.intercept_ = self.span.from_full(head)  # warm_start starts from these

    def step(self) -> tuple[float, float]:
        """One slice; returns the training loss (without the penalty) and accuracy."""
        with _quiet():
            self.clf.fit(self.z, self.y)
            self.span.to_full(self.clf.coef_, self.clf.intercept_, self.head)
            proba = self.clf.predict_proba(self.z)
        loss = float(-np.log(np.clip(proba[np.arange(len(self.y)), self.y], 1e-12, None)).mean())
        return loss, float((proba.argmax(1) == self.y).mean())
