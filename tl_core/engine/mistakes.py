"""Where a classifier fails: per-item probabilities turned into a confusion matrix, the items of one cell, and the
mistakes it was most sure of. Pure numpy over (true labels, probabilities), so every answer is checked against a
hand-made example without a model.
"""

from __future__ import annotations

import numpy as np


def predicted(probs: np.ndarray) -> np.ndarray:
    return np.asarray(probs).argmax(axis=1)


def confidence(probs: np.ndarray) -> np.ndarray:
    """The probability of the predicted class: how sure the model was."""
    return np.asarray(probs).max(axis=1)


def confusion(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> list[list[int]]:
    """Counts [true][predicted], the layout of tl_core.engine.metrics (scikit-learn's confusion_matrix)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, predicted(probs), labels=list(range(n_classes))).tolist()


def _by_confidence(positions: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """`positions` ordered by the model's confidence, highest first (ties: the earlier item first)."""
    conf = confidence(probs)[positions]
    return positions[np.lexsort((positions, -conf))]


def cell_items(y_true: np.ndarray, probs: np.ndarray, true_class: int, predicted_class: int) -> np.ndarray:
    """Positions of the items of class `true_class` predicted as `predicted_class` (one confusion-matrix cell),
    the most confident first."""
    y_true = np.asarray(y_true)
    hit = np.flatnonzero((y_true == true_class) & (predicted(probs) == predicted_class))
    return _by_confidence(hit, probs)


def confident_mistakes(y_true: np.ndarray, probs: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Positions of the wrongly predicted items, the most confident mistake first (at most `limit`)."""
    wrong = np.flatnonzero(np.asarray(y_true) != predicted(probs))
    ordered = _by_confidence(wrong, probs)
    return ordered if limit is None else ordered[: max(0, int(limit))]
