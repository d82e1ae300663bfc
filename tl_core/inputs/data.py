"""Datasets for Transfer Lab: the built-ins, user folders/zips of images, and CSV text.

Everything ends up as one `Dataset`: class names, integer labels, and either
uint8 RGB images or strings. Loading is strict about safety (see
`tl_core.inputs.archive`) and forgiving about mess: unreadable items are skipped and
listed in the report, so a student sees what was left out and why, while input
that cannot make a dataset at all raises a one-line `DataError`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from tl_core.inputs.archive import DEFAULT_LIMITS, DataError, Limits, iter_folder, iter_members
from tl_core.inputs.dataset import DataReport, Dataset, image_dataset, text_dataset  # noqa: F401  (public here too)
from tl_core.inputs.images import UnreadableImage, decode_image, decode_raw

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

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Uploaded images are downscaled on load so their shorter side is at most this:
#: the models train at 64-224 px, and a few hundred phone photos at full size
#: would otherwise fill the server's memory.
STORED_SHORT_SIDE = 256
#: Folder names (any case) accepted as the fixed validation half of a train/ + val/ layout, in preference order.
VAL_FOLDER_NAMES = ("val", "valid", "validation", "test")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "target", "sentiment")
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content")
#: Skipped items kept in a report; the rest are only counted, so a broken
#: 100k-row CSV does not produce a 100k-line report.
MAX_REPORTED_SKIPS = 500


# --------------------------------------------------------------------------- data types


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


# --------------------------------------------------------------------------- splits


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


def _class_sort_key(names):
    """Numeric class names sort as numbers (2 before 10); others alphabetically."""
    try:
        [float(n) for n in names]
        return lambda n: (float(n), n)
    except ValueError:
        return lambda n: n


def _layout(paths: list[str]) -> tuple[dict[str, tuple[str, bool]], list[str], list[str]]:
    """Map each path to (class, from_val_folder) from the folder structure.

    Accepts `class/...` or `train/class/...` + `val/class/...`, under any number
    of single wrapper folders. Returns (assignment, files outside class folders, notes).
    """
    parts = {p: PurePosixPath(p).parts for p in paths}
    wrappers = []
    while True:  # a lone top folder (beside stray files such as a README) whose insides are folders is a wrapper
        folders = {q[0] for q in parts.values() if len(q) >= 2}
        if len(folders) != 1 or not any(len(q) >= 3 for q in parts.values()):
            break
        wrappers.append(folders.pop())
        parts = {p: q[1:] for p, q in parts.items() if len(q) >= 2}
    notes = [f"used the wrapper folder {'/'.join(wrappers)}/"] if wrappers else []
    tops = {q[0].lower(): q[0] for q in parts.values() if len(q) >= 2}
    val_name = next((tops[v] for v in VAL_FOLDER_NAMES if v in tops), None) if "train" in tops else None
    assignment, outside = {}, set()
    for p, q in parts.items():
        if val_name is None and len(q) >= 2:
            assignment[p] = (q[0], False)
        elif val_name is not None and len(q) >= 3 and q[0] in (tops["train"], val_name):
            assignment[p] = (q[1], q[0] == val_name)
        else:
            outside.add(p)
    if val_name is not None:
        notes.append(f"{tops['train']}/ and {val_name}/ found: {val_name}/ items form the fixed validation set")
    return assignment, [p for p in paths if p not in parts or p in outside], notes


def _describe_ignored(ignored: list[tuple[str, str]], non_images: list[str], outside: list[str]) -> list[str]:
    notes = []
    by_reason = Counter(reason for _, reason in ignored)
    if by_reason["hidden"]:
        notes.append(f"ignored {by_reason['hidden']} hidden files or folders")
    if by_reason["__MACOSX"]:
        notes.append(f"skipped __MACOSX (macOS metadata, {by_reason['__MACOSX']} entries)")
    if by_reason["system file"]:
        notes.append(f"ignored {by_reason['system file']} system files (Thumbs.db, desktop.ini)")
    if non_images:
        exts = sorted({PurePosixPath(p).suffix.lower() or "(no extension)" for p in non_images})
        notes.append(f"ignored {len(non_images)} non-image files ({', '.join(exts[:8])})")
    if outside:
        notes.append(f"ignored {len(outside)} files outside class folders (e.g. {outside[0]})")
    return notes


def _load_image_tree(name: str, members_fn, limits: Limits) -> Dataset:
    """Build an image Dataset from `members_fn(want=, ignored=)`, an iterator of (path, bytes)."""
    seen, non_images, ignored = [], [], []

    def want(path: str) -> bool:
        seen.append(path)
        if PurePosixPath(path).suffix.lower() in IMAGE_EXTENSIONS:
            return True
        non_images.append(path)
        return False

    decoded, skipped, decoded_bytes = {}, {}, 0
    for path, data in members_fn(want=want, ignored=ignored):
        try:
            arr, size = decode_raw(data, limits, STORED_SHORT_SIDE)
        except UnreadableImage as e:
            skipped[path] = str(e)
            continue
        decoded_bytes += arr.nbytes
        if decoded_bytes > limits.max_decoded_bytes:
            raise DataError(
                f"the images need more than {limits.max_decoded_bytes / 2**30:.1f} GiB of memory once decoded; "
                "use fewer images"
            )
        decoded[path] = (arr, size)

    if not seen:
        raise DataError(f"no files found in {name}; expected one folder of images per class")
    if not decoded and not skipped:
        raise DataError(
            f"no image files found in {name} (found {len(seen)} other files, e.g. {seen[0]}); "
            "expected one folder of images per class"
        )
    assignment, outside, notes = _layout(seen)
    outside_set = set(outside)
    notes += _describe_ignored(ignored, [p for p in non_images if p not in outside_set], outside)

    by_class: dict[str, list[str]] = {}
    for path, (cls, _) in assignment.items():
        by_class.setdefault(cls, []).append(path)
    classes = sorted(by_class, key=_class_sort_key(list(by_class)))
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise DataError(
            f"need at least 2 class folders with images, found {found}; put each class's images in its own folder"
        )
    for cls in classes:
        if not any(p in decoded for p in by_class[cls]):
            raise DataError(f"class folder '{cls}' has no usable images; add images to it or remove it")

    labels, images, sizes, fixed = [], [], [], []
    for c, cls in enumerate(classes):
        for path in sorted(p for p in by_class[cls] if p in decoded):
            arr, size = decoded[path]
            labels.append(c)
            images.append(arr)
            sizes.append(size)
            fixed.append(assignment[path][1])
    shapes = {a.shape for a in images}
    stored = np.stack(images) if len(shapes) == 1 else images  # one array enables the fast batched path
    by_area = sorted(set(sizes), key=lambda s: (s[0] * s[1], s))
    image_sizes = {
        "min": list(by_area[0]),
        "max": list(by_area[-1]),
        "most_common": list(Counter(sizes).most_common(1)[0][0]),
    }
    skips = [(p, r) for p, r in skipped.items() if p in assignment]
    if len(skips) > MAX_REPORTED_SKIPS:
        notes.append(f"{len(skips) - MAX_REPORTED_SKIPS:,} more unreadable files are not listed")
        skips = skips[:MAX_REPORTED_SKIPS]
    fixed_val = np.array(fixed, dtype=bool) if any(fixed) else None
    return image_dataset(name, classes, labels, stored, notes, skips, image_sizes, fixed_val)


# --------------------------------------------------------------------------- CSV / TSV text


def _pick_column(header: list[str], wanted: str, role: str, source: str) -> int:
    for match in (lambda h: h == wanted, lambda h: h.strip().lower() == wanted.strip().lower()):
        hits = [i for i, h in enumerate(header) if match(h)]
        if hits:
            return hits[0]
    raise DataError(f"no {role} column named '{wanted}' in {source}; the columns are: {', '.join(header)}")


def _detect_columns(header, rows, text_column, label_column, source) -> tuple[int, int]:
    """(text index, label index): explicit names win, then well-known names, then the
    column with the longest average text (and, with two columns, the other one as label)."""
    lowered = [h.strip().lower() for h in header]
    label_i = _pick_column(header, label_column, "label", source) if label_column else next(
        (lowered.index(n) for n in LABEL_COLUMN_NAMES if n in lowered), None
    )
    if text_column:
        text_i = _pick_column(header, text_column, "text", source)
    else:
        text_i = next((lowered.index(n) for n in TEXT_COLUMN_NAMES if n in lowered and lowered.index(n) != label_i), None)
        if text_i is None:
            sample = rows[:2000]
            avg = [
                (np.mean([len(r[i]) for r in sample if i < len(r)] or [0]), i) for i in range(len(header)) if i != label_i
            ]
            text_i = max(avg)[1]
    if label_i is None and len(header) == 2:
        label_i = 1 - text_i
    if label_i is None:
        raise DataError(
            f"cannot tell which column of {source} holds the labels; name it 'label' or choose it. "
            f"The columns are: {', '.join(header)}"
        )
    if label_i == text_i:
        raise DataError(f"the text and label columns are both '{header[text_i]}'; choose two different columns")
    return text_i, label_i


_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def _utf16_without_bom(raw: bytes) -> str | None:
    """'utf-16-le'/'-be' when every other byte of the start is zero (ASCII text saved as UTF-16), else None."""
    head = raw[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _decode_text(name: str, raw: bytes) -> tuple[str, list[str]]:
    """The file as text: UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text"), else Windows-1252."""
    encoding = next((enc for bom, enc in _UTF16_BOMS.items() if raw.startswith(bom)), None) or _utf16_without_bom(raw)
    if encoding:
        try:
            return raw.decode(encoding).lstrip("\ufeff"), [f"read as {encoding.upper()[:6]} text"]
        except UnicodeDecodeError:
            raise DataError(f"{name} looks like UTF-16 text but cannot be decoded as it; "
                            "save it as 'CSV UTF-8' and upload it again") from None
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), ["the file is not UTF-8: read it as Windows-1252 (Western European); "
                                      "if letters look wrong, save it as 'CSV UTF-8'"]
    except UnicodeDecodeError:
        return raw.decode("latin-1"), ["the file is not UTF-8: read it as latin-1; "
                                       "if letters look wrong, save it as 'CSV UTF-8'"]


DELIMITERS = {",": "a comma", "\t": "a tab", ";": "a semicolon", "|": "a bar"}
_SNIFF_LINES = 200


def _fields(lines: list[str], delimiter: str) -> list[int]:
    try:
        return [len(r) for r in csv.reader(lines, delimiter=delimiter) if r]
    except csv.Error:
        return []


def _pick_delimiter(text: str, suffix: str) -> tuple[str, float]:
    """The delimiter that splits the first lines into the header's number of fields (at least 2), and the share of
    sampled rows that agree: the header alone misleads when a text column holds commas or the file is misnamed."""
    lines = text.split("\n", _SNIFF_LINES)[:_SNIFF_LINES]
    preferred = "\t" if suffix == ".tsv" else ","

    def score(d: str) -> tuple[float, bool, int]:
        counts = _fields(lines, d)
        if not counts or counts[0] < 2:
            return 0.0, d == preferred, 0
        rest = counts[1:]
        agree = sum(n == counts[0] for n in rest) / len(rest) if rest else 1.0
        return agree, d == preferred, counts[0]

    best = max(DELIMITERS, key=score)
    return best, score(best)[0]


def _load_csv(name: str, raw: bytes, suffix: str, text_column, label_column, limits: Limits) -> Dataset:
    text, notes = _decode_text(name, raw)
    if "\x00" in text[:4096]:
        raise DataError(f"{name} looks like a binary file, not a CSV; save it as a CSV or TSV text file")
    first, _, rest = text.partition("\n")
    sep_line = re.fullmatch(r"\s*sep=(.)\s*", first, flags=re.IGNORECASE)
    if sep_line:  # Excel's hint line, "sep=;": it names the delimiter and is not the header
        delimiter, agree, text = sep_line.group(1), 1.0, rest
        notes.append(f"used the delimiter named on the file's first line ({first.strip()})")
    else:
        delimiter, agree = _pick_delimiter(text, suffix)
    if suffix == ".tsv" and delimiter != "\t" and agree > 0:
        notes.append(f"the fields are separated by {DELIMITERS.get(delimiter, repr(delimiter))}, not tabs")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        header = next(reader, None)
        for row in reader:
            if len(rows) >= limits.max_text_rows:
                raise DataError(f"{name} has more than {limits.max_text_rows:,} rows; use a smaller file")
            rows.append(row)
    except csv.Error as e:
        raise DataError(f"{name} is not a valid CSV (line {reader.line_num}: {e}); check the quoting") from None
    if header is None or not any(h.strip() for h in header) or not rows:
        raise DataError(f"the CSV is empty: {name}; it needs a header row and one row per example")
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(header)]
    if len(header) < 2:
        raise DataError(f"{name} has one column ('{header[0][:60]}'); it needs a text column and a label column, "
                        "separated by a comma, a tab or a semicolon")
    text_i, label_i = _detect_columns(header, rows, text_column, label_column, name)
    notes.append(f"text column '{header[text_i]}', label column '{header[label_i]}'")

    texts, raw_labels, skipped, seen, dupes, short, filled = [], [], [], set(), 0, 0, 0
    for n, row in enumerate(rows, start=2):  # row 1 is the header
        filled += any(cell.strip() for cell in row)
        if len(row) <= max(text_i, label_i):
            if any(cell.strip() for cell in row):
                short += 1
                skipped.append((f"row {n}", f"has {len(row)} fields, expected {len(header)}"))
            continue
        t, lab = row[text_i].strip(), row[label_i].strip()
        if [c.strip() for c in row] == header:
            skipped.append((f"row {n}", "repeats the header row"))
        elif not t or not lab:
            skipped.append((f"row {n}", "empty text" if not t else "missing label"))
        elif t in seen:
            dupes += 1
        else:
            seen.add(t)
            texts.append(t)
            raw_labels.append(lab)
    if short > filled / 2:  # most rows do not split like the header: the wrong delimiter, or broken quoting
        raise DataError(
            f"{name}: {short:,} of {filled:,} rows have fewer fields than the header's {len(header)} when split at "
            f"{DELIMITERS.get(delimiter, repr(delimiter))}; check the delimiter between the fields and the quoting "
            "of texts that contain it")
    if dupes:
        notes.append(f"dropped {dupes:,} duplicate texts (so no text is in both training and validation)")
    classes = sorted(set(raw_labels), key=_class_sort_key(set(raw_labels)))
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise DataError(f"need at least 2 classes in column '{header[label_i]}' of {name}, found {found}")
    if len(classes) > min(1000, max(50, len(texts) // 2)):
        raise DataError(
            f"column '{header[label_i]}' has {len(classes):,} different values, too many for labels; "
            "choose the column that holds the class of each row"
        )
    if len(skipped) > MAX_REPORTED_SKIPS:
        notes.append(f"{len(skipped) - MAX_REPORTED_SKIPS:,} more skipped rows are not listed")
        skipped = skipped[:MAX_REPORTED_SKIPS]
    index = {c: i for i, c in enumerate(classes)}
    return text_dataset(name, classes, [index[lab] for lab in raw_labels], texts, notes, skipped)


# --------------------------------------------------------------------------- entry points


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
        return _load_image_tree(str(path), lambda **kw: iter_folder(path, limits, **kw), limits)
    suffix = path.suffix.lower()
    if suffix == ".zip" or _is_zip(path):
        return _load_image_tree(path.name, lambda **kw: iter_members(path, limits, **kw), limits)
    if suffix in (".csv", ".tsv"):
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise DataError(f"{path.name} is too large: {size / 2**20:.0f} MiB (limit {limits.max_upload_bytes / 2**20:.0f} MiB)")
        return _load_csv(path.name, path.read_bytes(), suffix, text_column, label_column, limits)
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
        return _load_image_tree(filename, lambda **kw: iter_members(data, limits, name=filename, **kw), limits)
    if suffix in (".csv", ".tsv") or (suffix in ("", ".txt") and data and b"\x00" not in data[:4096]):
        return _load_csv(filename, data, suffix, text_column, label_column, limits)
    raise DataError(f"not a zip archive, folder or CSV: {filename}")


def list_builtins() -> list[dict]:
    """Name, kind, classes, size and a description of each built-in dataset (loads them; cached)."""
    from tl_core.inputs.builtin_sets import list_builtins as _list

    return _list()
