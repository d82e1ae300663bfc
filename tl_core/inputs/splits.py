"""Which items train, which choose the epoch, which are reported: the seeded, stratified split of a dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tl_core.inputs.archive import DataError
from tl_core.inputs.dataset import Dataset


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # int indices into the dataset
    val: np.ndarray  # chooses the epoch
    test: np.ndarray  # reported; disjoint from both
    seed: int
    val_per_class: int
    test_per_class: int
    labels_per_class: int | None

    def per_class(self, labels: np.ndarray, n_classes: int) -> dict[str, list[int]]:
        """Items per class in each part: what the app shows beside the split settings."""
        return {part: np.bincount(labels[getattr(self, part)], minlength=n_classes).tolist()
                for part in ("train", "val", "test")}


def make_split(
    ds: Dataset,
    *,
    val_per_class: int = 20,
    test_per_class: int = 50,
    labels_per_class: int | None = None,
    seed: int = 0,
) -> Split:
    """Stratified, seeded train / validation / test indices.

    Each class gets its own generator seeded by (seed, class index) and one
    permutation: the first items are validation, the next test, the rest the
    training pool, and `labels_per_class` takes a prefix of that pool. So
    validation and test never depend on `labels_per_class`, and 10 labels per
    class are a subset of 50: runs with different label budgets score on
    exactly the same items. Validation picks the epoch; test is what a run
    reports, so the number a student reads was not chosen on the items it is
    measured on.

    Small classes still split: validation and test each take at most a third
    of a class (at least one item each), and the rest trains.

    With a fixed val/ folder, its items are split per class into validation
    (the first half, at most `val_per_class`) and test (the rest, at most
    `test_per_class`), and training is the train/ items; surplus val/ items
    are left unused rather than trained on.
    """
    if val_per_class < 1 or test_per_class < 1:
        raise DataError("validation and test need at least 1 item per class each")
    if labels_per_class is not None and labels_per_class < 1:
        raise DataError(f"labels per class must be at least 1, got {labels_per_class}")
    train, val, test = [], [], []
    for c, name in enumerate(ds.classes):
        idx = np.flatnonzero(ds.labels == c)
        rng = np.random.default_rng([seed, c])
        if ds.fixed_val is not None:
            held = rng.permutation(idx[ds.fixed_val[idx]])
            pool = rng.permutation(idx[~ds.fixed_val[idx]])
            n_val = min(val_per_class, (len(held) + 1) // 2)
            val_c, test_c = held[:n_val], held[n_val:n_val + test_per_class]
            if len(pool) < 1 or len(val_c) < 1 or len(test_c) < 1:
                raise DataError(
                    f"class '{name}' needs at least 1 training item and 2 held-out items (validation and test), "
                    f"found {len(pool)} and {len(held)}"
                )
        else:
            if len(idx) < 3:
                raise DataError(
                    f"class '{name}' has only {len(idx)} item(s); each class needs at least 3 "
                    "(training, validation and test)"
                )
            perm = rng.permutation(idx)
            n_val, n_test = min(val_per_class, len(idx) // 3), min(test_per_class, len(idx) // 3)
            val_c, test_c, pool = perm[:n_val], perm[n_val:n_val + n_test], perm[n_val + n_test:]
        val.append(val_c)
        test.append(test_c)
        train.append(pool if labels_per_class is None else pool[:labels_per_class])
    as_index = lambda parts: np.sort(np.concatenate(parts)).astype(np.int64)  # noqa: E731
    return Split(
        train=as_index(train),
        val=as_index(val),
        test=as_index(test),
        seed=seed,
        val_per_class=val_per_class,
        test_per_class=test_per_class,
        labels_per_class=labels_per_class,
    )


def sample_indices(ds: Dataset, per_class: int = 4, seed: int = 0) -> dict[str, list[int]]:
    """A few seeded example indices per class, for the app's sample grid."""
    rng = np.random.default_rng(seed)
    out = {}
    for c, name in enumerate(ds.classes):
        idx = np.flatnonzero(ds.labels == c)
        out[name] = sorted(int(i) for i in rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return out
