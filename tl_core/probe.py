"""The linear-probe protocol of Kornblith et al. 2019: logistic regression on frozen penultimate features,
C chosen on the validation split. It is the yardstick a frozen run's default head must reach."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from .training import Prepared, _boundary_activations

DEFAULT_CS = tuple(np.logspace(-3, 2, 6))


def frozen_features(prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of the pretrained backbone for the train and val splits (one forward pass each)."""
    depth, prep.depth = prep.depth, prep.model.n_blocks
    try:
        return tuple(_boundary_activations(prep, x).cpu().numpy() for x in (prep.x_train, prep.x_val))
    finally:
        prep.depth = depth


def linear_probe(prep: Prepared, cs=DEFAULT_CS) -> dict:
    x_train, x_val = frozen_features(prep)
    y_train, y_val = prep.y_train.cpu().numpy(), prep.y_val.cpu().numpy()
    scores = {}
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train)
        scores[float(c)] = float((clf.predict(x_val) == y_val).mean())
    best = max(scores, key=scores.get)
    return {"C": best, "val_acc": scores[best], "by_C": scores}
