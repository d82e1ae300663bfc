"""The in-memory dataset every loader returns: built-in sets and uploads build it through the same two
constructors, so `builtin_sets` and `data` both depend on this module and not on each other."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from tl_core.inputs.archive import DataError
from tl_core.inputs.images import resize_crop

_BATCH_CHUNK = 256
#: Skipped items kept in a report; the rest are only counted, so a broken
#: 100k-row CSV does not produce a 100k-line report.
MAX_REPORTED_SKIPS = 500


@dataclass
class DataReport:
    """What was loaded and what was left out, for the app's data page and the CLI."""

    source: str
    kind: str  # "image" | "text"
    counts: dict[str, int]  # items per class, in class order
    skipped: list[tuple[str, str]]  # (file name / row, reason) for unreadable items
    image_sizes: dict | None  # {"min": [w,h], "max": [w,h], "most_common": [w,h]}; original sizes
    notes: list[str] = field(default_factory=list)


@dataclass
class Dataset:
    """A labelled image or text dataset held in memory."""

    name: str
    kind: str  # "image" | "text"
    classes: list[str]
    labels: np.ndarray  # int64 [N]
    images: np.ndarray | list[np.ndarray] | None  # uint8 [N,H,W,3] or list of HxWx3
    texts: list[str] | None
    fixed_val: np.ndarray | None  # bool [N]
    report: DataReport

    def __len__(self) -> int:
        return len(self.labels)

    def image_batch(self, indices, size: int) -> torch.Tensor:
        """uint8 [n,3,size,size]: shorter side resized to `size` (antialiased), centre-cropped.

        Same-size storage is resized in chunks with one batched interpolate;
        mixed sizes go image by image through the same function, so both
        storages give identical pixels for identical images.
        """
        if self.images is None:
            raise DataError(f"{self.name} is a text dataset and has no images")
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = torch.empty((len(idx), 3, size, size), dtype=torch.uint8)
        if isinstance(self.images, np.ndarray):
            for start in range(0, len(idx), _BATCH_CHUNK):
                chunk = torch.from_numpy(self.images[idx[start : start + _BATCH_CHUNK]])  # fancy index: a copy
                out[start : start + len(chunk)] = resize_crop(chunk.permute(0, 3, 1, 2), size)
        else:
            for j, i in enumerate(idx):
                img = torch.tensor(self.images[i]).permute(2, 0, 1)[None]
                out[j] = resize_crop(img, size)[0]
        return out

    @functools.cached_property
    def content_digest(self) -> str:
        """sha256 of what the items are (class names, labels, every image's pixels or every text), computed once
        per object: the shared activation cache keys on it, so two uploads of the same files share entries and a
        changed file never reads another's. A Dataset is not changed after it is built (`subset` makes a new one)."""
        h = hashlib.sha256()
        h.update(repr((self.kind, list(self.classes))).encode())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        if isinstance(self.images, np.ndarray):
            h.update(repr(self.images.shape).encode())
            h.update(np.ascontiguousarray(self.images).data)
        elif self.images is not None:
            for img in self.images:
                h.update(repr(img.shape).encode())
                h.update(np.ascontiguousarray(img).data)
        for text in self.texts or ():
            h.update(text.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()

    def subset(self, indices) -> "Dataset":
        """The same dataset restricted to `indices` (classes kept, counts recomputed)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        labels = self.labels[idx]
        if isinstance(self.images, np.ndarray):
            images = self.images[idx]
        elif self.images is not None:
            images = [self.images[i] for i in idx]
        else:
            images = None
        counts = {c: int(n) for c, n in zip(self.classes, np.bincount(labels, minlength=len(self.classes)))}
        return replace(
            self,
            name=f"{self.name}[subset:{len(idx)}]",
            labels=labels,
            images=images,
            texts=None if self.texts is None else [self.texts[i] for i in idx],
            fixed_val=None if self.fixed_val is None else self.fixed_val[idx],
            report=replace(self.report, counts=counts, skipped=list(self.report.skipped), notes=list(self.report.notes)),
        )


def image_dataset(name, classes, labels, images, notes=(), skipped=(), sizes=None, fixed_val=None) -> Dataset:
    labels = np.asarray(labels, dtype=np.int64)
    counts = {c: int(n) for c, n in zip(classes, np.bincount(labels, minlength=len(classes)))}
    if sizes is None:
        h, w = images.shape[1:3]
        sizes = {"min": [w, h], "max": [w, h], "most_common": [w, h]}
    report = DataReport(name, "image", counts, list(skipped), sizes, list(notes))
    return Dataset(name, "image", list(classes), labels, images, None, fixed_val, report)


def text_dataset(name, classes, labels, texts, notes=(), skipped=()) -> Dataset:
    labels = np.asarray(labels, dtype=np.int64)
    counts = {c: int(n) for c, n in zip(classes, np.bincount(labels, minlength=len(classes)))}
    report = DataReport(name, "text", counts, list(skipped), None, list(notes))
    return Dataset(name, "text", list(classes), labels, None, list(texts), None, report)


def class_sort_key(names):
    """The order of a loaded set's classes: numeric names sort as numbers (2 before 10); others alphabetically."""
    try:
        [float(n) for n in names]
        return lambda n: (float(n), n)
    except ValueError:
        return lambda n: n
