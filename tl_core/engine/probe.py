"""The yardstick a frozen run's default head must reach: the linear-probe protocol of Kornblith et al. 2019.

Logistic regression on the frozen backbone's pooled features, fitted by scikit-learn directly on the full features
(no tricks), its C chosen by stratified 5-fold cross-validation on the training items; scored on the run's
validation and test items.
"""

from __future__ import annotations

import warnings

import numpy as np

from tl_core.engine.activations import boundary_activations
from tl_core.engine.preparation import Prepared


def frozen_features(prep: Prepared, parts=("x_train", "x_val")) -> tuple[np.ndarray, ...]:
    """Pooled features of the pretrained backbone for the given splits (one forward pass each)."""
    depth, prep.depth = prep.depth, prep.model.n_blocks
    try:
        return tuple(boundary_activations(prep, getattr(prep, p)).double().cpu().numpy() for p in parts)
    finally:
        prep.depth = depth


def linear_probe(prep: Prepared, cs=None, folds: int = 5) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from tl_core.engine.head_fit import C_GRID

    x_train, x_val, x_test = frozen_features(prep, ("x_train", "x_val", "x_test"))
    y_train, y_val, y_test = (t.cpu().numpy() for t in (prep.y_train, prep.y_val, prep.y_test))
    n_splits = max(2, min(folds, int(np.bincount(y_train).min())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegressionCV(Cs=list(cs or C_GRID), l1_ratios=(0.0,), scoring="accuracy", max_iter=5000,
                                   cv=StratifiedKFold(n_splits, shuffle=True, random_state=0),
                                   use_legacy_attributes=False).fit(x_train, y_train)
    return {"C": float(clf.C_), "val_acc": float((clf.predict(x_val) == y_val).mean()),
            "test_acc": float((clf.predict(x_test) == y_test).mean())}
