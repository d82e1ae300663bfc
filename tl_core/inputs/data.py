"""Datasets for Transfer Lab: the built-ins, user folders/zips of images, and CSV text.

Everything ends up as one `Dataset`: class names, integer labels, and either
uint8 RGB images or strings. Loading is strict about safety (see
`tl_core.inputs.archive`) and forgiving about mess: unreadable items are skipped and
listed in the report, so a student sees what was left out and why, while input
that cannot make a dataset at all raises a one-line `DataError`.

This module is the entry point: it tells what a source is and hands it to its loader
(`image_folders` for class folders and zips, `csv_text` for CSV/TSV, `builtin_sets`);
`splits` divides a loaded set into training, validation and test items.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from tl_core.inputs.archive import DEFAULT_LIMITS, DataError, Limits, iter_folder, iter_members
from tl_core.inputs.csv_text import load_csv
from tl_core.inputs.dataset import DataReport, Dataset, image_dataset, text_dataset  # noqa: F401  (public here too)
from tl_core.inputs.image_folders import IMAGE_EXTENSIONS, load_image_tree
from tl_core.inputs.images import decode_image  # noqa: F401
from tl_core.inputs.splits import Split, make_split, sample_indices  # noqa: F401

__all__ = [
    "DataError",
    "Limits",
    "DEFAULT_LIMITS",
    "DataReport",
    "Dataset",
    "Split",
    "make_split",
    "list_builtins",
    "load_dataset",
    "load_upload",
    "sample_indices",
    "decode_image",
    "IMAGE_EXTENSIONS",
]


def load_dataset(
    source: str | os.PathLike,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Dataset:
    """Load a built-in (`builtin:NAME`), a class-folder directory, a .zip of one, or a .csv/.tsv."""
    if isinstance(source, str) and source.startswith("builtin:"):
        from tl_core.inputs.builtin_sets import BUILTINS

        if source not in BUILTINS:
            raise DataError(f"unknown built-in dataset '{source}'; choose one of: {', '.join(BUILTINS)}")
        return BUILTINS[source]()
    path = Path(source)
    if not path.exists():
        raise DataError(f"not found: {path}")
    _refuse_spreadsheet(path.name)
    if path.is_dir():
        return load_image_tree(str(path), lambda **kw: iter_folder(path, limits, **kw), limits)
    suffix = path.suffix.lower()
    if suffix == ".zip" or _is_zip(path):
        return load_image_tree(path.name, lambda **kw: iter_members(path, limits, **kw), limits)
    if suffix in (".csv", ".tsv"):
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise DataError(f"{path.name} is too large: {size / 2**20:.0f} MiB (limit {limits.max_upload_bytes / 2**20:.0f} MiB)")
        return load_csv(path.name, path.read_bytes(), suffix, text_column, label_column, limits)
    raise DataError(f"not a zip archive, folder or CSV: {path}")


def _refuse_spreadsheet(name: str) -> None:
    """Spreadsheets are zips or binaries; say what to do instead of failing obscurely."""
    if PurePosixPath(name).suffix.lower() in (".xlsx", ".xls", ".xlsm", ".ods", ".numbers"):
        raise DataError(f"spreadsheets are not read directly: save {name} as CSV (File > Save As > CSV) and load that")


def _is_zip(path: Path) -> bool:
    """True if the file starts like a zip archive, whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def load_upload(
    filename: str,
    data: bytes,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Dataset:
    """Load an in-memory upload: a zip of class folders, or a CSV/TSV (by name, else by content)."""
    if len(data) > limits.max_upload_bytes:
        raise DataError(
            f"{filename} is too large: {len(data) / 2**20:.0f} MiB (limit {limits.max_upload_bytes / 2**20:.0f} MiB)"
        )
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    _refuse_spreadsheet(filename)
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or suffix == ".zip":
        return load_image_tree(filename, lambda **kw: iter_members(data, limits, name=filename, **kw), limits)
    if suffix in (".csv", ".tsv") or (suffix in ("", ".txt") and data and b"\x00" not in data[:4096]):
        return load_csv(filename, data, suffix, text_column, label_column, limits)
    raise DataError(f"not a zip archive, folder or CSV: {filename}")


def list_builtins() -> list[dict]:
    """Name, kind, classes, size and a description of each built-in dataset (loads them; cached)."""
    from tl_core.inputs.builtin_sets import list_builtins as _list

    return _list()
