"""Text classification data from a CSV or TSV file, however a spreadsheet saved it.

Forgiving about mess: the encoding (UTF-8, UTF-16, Windows-1252), the delimiter (sniffed, or Excel's "sep="
line), the text and label columns (named, well-known names, or guessed), duplicates and broken rows (skipped
and reported). Input that cannot make a dataset raises a one-line `DataError` that says what to do.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np

from tl_core.inputs.archive import DataError, Limits
from tl_core.inputs.dataset import MAX_REPORTED_SKIPS, Dataset, class_sort_key, text_dataset

LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "target", "sentiment")
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content")


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


def load_csv(name: str, raw: bytes, suffix: str, text_column, label_column, limits: Limits) -> Dataset:
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
    classes = sorted(set(raw_labels), key=class_sort_key(set(raw_labels)))
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
