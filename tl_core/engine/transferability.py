"""Rank backbones before training: scores computed from frozen features and labels alone.

Fine-tuning every candidate backbone to pick one is the expensive way; these scores read how well a
backbone's frozen features already fit the target labels, in seconds. LogME (You et al., ICML 2021) is the
maximised evidence of a Bayesian linear model on the features; the regularised H-score (Ibrahim et al.,
ECML-PKDD 2022) is the H-score with a Ledoit-Wolf covariance, because the plain one inverts a sample
covariance that is singular whenever features outnumber items. `rank_agreement` says whether a score's
ranking matched the accuracies training later measured, with the statistics those papers report.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize_scalar
from sklearn.covariance import ledoit_wolf

GRID = 64  # log-spaced alpha/beta ratios scanned before polishing: the evidence can have two local maxima
MARGIN = 20.0  # how far (in log) past the spectrum the scan goes: the closed-form edges cover the rest, and labels
# fitted exactly (an unbounded evidence) get a finite, high score instead of infinity
RANK_CUT = 1e-12  # squared singular values below this share of the largest are rounding noise, not directions


class ClassEvidence(NamedTuple):
    evidence: float  # maximised log evidence divided by the number of items
    alpha: float  # prior precision of the weights (inf: the features do not help)
    beta: float  # noise precision (inf: the features fit the labels without noise)


def _check(features, labels) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if f.ndim != 2 or len(f) != len(y):
        raise ValueError(f"features must be items x dims with one label per item; got {f.shape} and {y.shape}")
    if len(y) < 2:
        raise ValueError("at least 2 items are needed to score features")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or infinite values")
    return f, np.unique(y, return_inverse=True)[1]


def _label_spectrum(f: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared singular values of f and each class column's squared coordinates on its left singular vectors:
    all LogME needs, from one eigendecomposition of the Gram matrix of f's shorter side, so neither a wide
    backbone nor a long data set makes a large matrix."""
    n, d = f.shape
    sigma, vecs = np.linalg.eigh(f @ f.T if n <= d else f.T @ f)
    keep = sigma > RANK_CUT * max(sigma.max(), 0.0)
    sigma, vecs = sigma[keep], vecs[:, keep]
    coords = vecs.T @ onehot if n <= d else vecs.T @ (f.T @ onehot) / np.sqrt(sigma)[:, None]
    return sigma, coords**2


def _terms(t: float, sigma, x2, res_x2):
    """gamma (effective number of weights), |m|^2 and the squared residual of the posterior mean for
    prior/noise precision ratio t, in the eigenbasis so that no d x d matrix is ever formed."""
    shrink = sigma / (sigma + t)
    return shrink.sum(), (shrink * x2 / (sigma + t)).sum(), ((1.0 - shrink) ** 2 * x2).sum() + res_x2


def _profile(log_t: float, sigma, x2, res_x2, n) -> tuple[float, float]:
    """2 x log evidence (less n log 2pi) at t = alpha/beta, with beta at its best for that t, which has a closed
    form. Bishop (3.86) with |A| = prod(alpha + beta*sigma) * alpha^(d-k): the d - k directions the features
    do not span cancel against (d/2) log alpha (thuml/LogME issue #23 keeps d/2 and is wrong when n < d)."""
    t = np.exp(log_t)
    _, m2, res2 = _terms(t, sigma, x2, res_x2)
    beta = n / (res2 + t * m2)
    return n * np.log(beta) - np.log1p(sigma / t).sum() - n, beta


def _class_evidence(sigma, x2, y2, n) -> ClassEvidence:
    """The evidence maximised over alpha, beta. Its interior maxima are the fixed points of You et al.'s updates
    (alpha = gamma/|m|^2, beta = (n - gamma)/|res|^2); their iteration settles in a few steps on spread spectra
    but takes thousands on flat ones and climbs to whichever maximum lies uphill of t = 1, so the one free ratio is
    scanned and polished instead, and the two edges the maximum can sit at are scored in closed form."""
    res_x2 = max(y2 - x2.sum(), 0.0)  # the part of y outside the features' span
    candidates = [(n * np.log(n / y2) - n, np.inf, n / y2)]  # alpha -> inf: weights pinned at 0, y ~ N(0, I/beta)
    if len(sigma):
        lo, hi = np.log(sigma.min()) - MARGIN, np.log(sigma.max()) + MARGIN
        grid = np.linspace(lo, hi, GRID)
        start = grid[np.argmax([_profile(s, sigma, x2, res_x2, n)[0] for s in grid])]
        step = grid[1] - grid[0]
        best = minimize_scalar(lambda s: -_profile(s, sigma, x2, res_x2, n)[0], method="bounded",
                               bounds=(max(start - step, lo), min(start + step, hi)), options={"xatol": 1e-10}).x
        log_ev, beta = _profile(best, sigma, x2, res_x2, n)
        candidates.append((log_ev, np.exp(best) * beta, beta))
    if len(sigma) == n:  # features span every item: beta -> inf, y fitted without noise, y ~ N(0, F F^T/alpha)
        alpha = n / (x2 / sigma).sum()
        candidates.append((n * np.log(alpha) - np.log(sigma).sum() - n, alpha, np.inf))
    log_ev, alpha, beta = max(candidates, key=lambda c: c[0])
    return ClassEvidence(float((log_ev - n * np.log(2 * np.pi)) / (2 * n)), float(alpha), float(beta))


def logme_per_class(features, labels) -> list[ClassEvidence]:
    """One Bayesian linear regression per class onto its one-hot column, sharing one decomposition."""
    f, y = _check(features, labels)
    onehot = np.eye(y.max() + 1)[y]
    sigma, x2 = _label_spectrum(f, onehot)
    return [_class_evidence(sigma, x2[:, c], float(count), len(y)) for c, count in enumerate(onehot.sum(axis=0))]


def logme(features, labels) -> float:
    """LogME: higher means a linear head on these frozen features should fit the labels better."""
    return float(np.mean([c.evidence for c in logme_per_class(features, labels)]))


def distinct_items(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """The items of a data set with one copy of each exact duplicate (the same features and label: the same item
    stored twice). A duplicated item makes the features rank-deficient, so a class whose labels lie in their span
    has an unbounded evidence, and LogME would report the edge of its search (a value set by MARGIN, not by the
    data): builtin:animals holds one such pair. Features that are genuinely shared by many items (the degenerate
    cases LogME itself handles) are not a data set's items; this is for scoring real items."""
    f, y = np.asarray(features, dtype=np.float64), np.asarray(labels).reshape(-1)
    _, first = np.unique(np.column_stack([f, y.astype(np.float64)]), axis=0, return_index=True)
    keep = np.sort(first)
    return f[keep], y[keep]


def score_items(features, labels) -> tuple[float, float]:
    """LogME and the regularised H-score of a data set's items, each exact duplicate counted once."""
    f, y = distinct_items(features, labels)
    return logme(f, y), hscore_regularized(f, y)


def hscore_regularized(features, labels) -> float:
    """tr(cov_shrunk(f)^-1 (1 - shrinkage) cov(E[f|y])): how far class means sit apart in units of the feature
    spread. Ledoit-Wolf keeps the inverse well defined when dims outnumber items, where the plain H-score
    inverts a singular matrix and returns noise."""
    f, y = _check(features, labels)
    f = f - f.mean(axis=0)
    cov, shrinkage = ledoit_wolf(f)
    counts = np.bincount(y)
    means = np.stack([f[y == c].mean(axis=0) for c in range(len(counts))])
    weighted = means * np.sqrt(counts)[:, None]  # cov(g) = weighted.T @ weighted / (n - 1), never built item by item
    try:  # shrinkage towards the identity makes the estimate positive definite, so Cholesky is enough
        solved = cho_solve(cho_factor(cov), weighted.T)
    except np.linalg.LinAlgError:  # every feature constant (the estimate is 0): the pseudo-inverse scores 0
        solved = np.linalg.pinv(cov, rtol=cov.shape[0] * np.finfo(np.float64).eps, hermitian=True) @ weighted.T
    return float((1.0 - shrinkage) * np.sum(weighted.T * solved) / (len(y) - 1))


def _defined(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def rank_agreement(scores: list[float], accuracies: list[float]) -> dict:
    """Did the score order backbones as training did? Weighted tau counts swaps among the best more, as the
    papers report it; values are None where a ranking statistic means nothing (under 3 backbones, all tied)."""
    if len(scores) != len(accuracies):
        raise ValueError(f"{len(scores)} scores but {len(accuracies)} accuracies")
    if len(scores) < 3:
        return {"kendall_tau": None, "p_value": None, "weighted_tau": None, "n": len(scores)}
    tau = stats.kendalltau(scores, accuracies)
    weighted = stats.weightedtau(scores, accuracies)
    return {"kendall_tau": _defined(tau.statistic), "p_value": _defined(tau.pvalue),
            "weighted_tau": _defined(weighted.statistic), "n": len(scores)}
