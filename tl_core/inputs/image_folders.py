"""Images in class folders (a folder or a zip): which file belongs to which class, what was left out and why.

Accepts `class/...` or `train/class/...` + `val/class/...` under any number of single wrapper folders; the
files themselves come from `tl_core.inputs.archive`, which enforces the safety limits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath

import numpy as np

from tl_core.inputs.archive import DataError, Limits
from tl_core.inputs.dataset import MAX_REPORTED_SKIPS, Dataset, class_sort_key, image_dataset
from tl_core.inputs.images import UnreadableImage, decode_raw

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Uploaded images are downscaled on load so their shorter side is at most this:
#: the models train at 64-224 px, and a few hundred phone photos at full size
#: would otherwise fill the server's memory.
STORED_SHORT_SIDE = 256
#: Folder names (any case) accepted as the fixed validation half of a train/ + val/ layout, in preference order.
VAL_FOLDER_NAMES = ("val", "valid", "validation", "test")


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


def load_image_tree(name: str, members_fn, limits: Limits) -> Dataset:
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
    classes = sorted(by_class, key=class_sort_key(list(by_class)))
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
