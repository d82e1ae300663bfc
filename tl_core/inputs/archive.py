"""Read user-supplied zip archives and folders without trusting them.

An upload in a classroom app is untrusted input: it may be a zip bomb, carry
`../` paths, symlinks, or millions of tiny members. So archives are never
extracted to disk; members are read into memory one at a time, and every limit
is checked against the bytes actually read, not the sizes the archive claims.

This module is the lowest layer of the data code, so the error type and the
limits live here; `tl_core.inputs.data` re-exports them.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from tl_core.errors import UserError

__all__ = [
    "DataError",
    "Limits",
    "DEFAULT_LIMITS",
    "ignore_reason",
    "iter_members",
    "iter_folder",
    "not_a_zip_message",
]

_CHUNK = 1 << 20
#: Members smaller than this are not ratio-checked: tiny files (a 1 KiB blank
#: image, a short text) compress far beyond 100:1 without being bombs, and the
#: total-bytes cap already bounds what many of them can add up to.
RATIO_GRACE_BYTES = 1 << 20


class DataError(UserError):
    """Bad input. The message is one line, shown to users verbatim."""


@dataclass(frozen=True)
class Limits:
    """Caps on what a dataset may cost to read; defaults suit a shared classroom server."""

    max_upload_bytes: int = 200 * 2**20  # compressed upload / file size
    max_members: int = 20_000  # archive members (or files in a folder)
    max_total_bytes: int = 1 * 2**30  # uncompressed total actually read
    max_ratio: float = 100.0  # per-member compression ratio
    max_image_pixels: int = 40_000_000  # per image, checked before decoding
    max_text_rows: int = 200_000
    max_decoded_bytes: int = 2 * 2**30  # decoded pixels kept in memory for one dataset


DEFAULT_LIMITS = Limits()


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def ignore_reason(path: str) -> str | None:
    """Why a relative posix path is not data (hidden, OS metadata), or None if it may be."""
    parts = PurePosixPath(path).parts
    if "__MACOSX" in parts:
        return "__MACOSX"
    if any(p.startswith(".") for p in parts):
        return "hidden"
    if parts and parts[-1].lower() in ("thumbs.db", "desktop.ini"):
        return "system file"
    return None


def _check_upload_size(size: int, what: str, limits: Limits) -> None:
    if size > limits.max_upload_bytes:
        raise DataError(
            f"{what} is too large: {_mib(size)} (limit {_mib(limits.max_upload_bytes)}); "
            "upload fewer or smaller files"
        )


def _safe_name(raw: str) -> str:
    """The member's relative posix path; refuses absolute and `..` paths (zip-slip)."""
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise DataError(f"unsafe path in the zip archive: {raw!r}; rebuild the archive with plain file names")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"unsafe absolute path in the zip archive: {raw!r}; zip the folder with relative paths")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"unsafe path with '..' in the zip archive: {raw!r}; zip the folder with relative paths")
    return "/".join(parts)


def _declared_entries(fp) -> int | None:
    """Member count from the end-of-central-directory record, read before zipfile
    parses the whole directory (a 200 MiB archive could list millions of entries).

    Uses zipfile's private `_EndRecData`; if that ever disappears we fall back to
    counting after parsing.
    """
    end_rec = getattr(zipfile, "_EndRecData", None)
    if end_rec is None:
        return None
    try:
        rec = end_rec(fp)
        return None if rec is None else int(rec[zipfile._ECD_ENTRIES_TOTAL])
    except Exception:
        return None
    finally:
        fp.seek(0)


def iter_members(
    source: str | os.PathLike | bytes,
    limits: Limits = DEFAULT_LIMITS,
    *,
    want: Callable[[str], bool] | None = None,
    ignored: list[tuple[str, str]] | None = None,
    name: str | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Yield (relative posix path, content) for each regular, non-hidden member.

    The whole archive is vetted before the first member is read: any unsafe
    name, symlink, excessive ratio or member count refuses the archive as a
    whole, because a crafted archive should not half-load. `want(path)` lets the
    caller skip members (e.g. non-images) without reading them; hidden and OS
    metadata members are appended to `ignored` as (path, reason). `name` names an
    in-memory upload in messages.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        fp = io.BytesIO(bytes(source))
        label = name or "the upload"
        size = len(fp.getbuffer())
    else:
        path = Path(source)
        label = path.name
        try:
            size = path.stat().st_size
            fp = open(path, "rb")
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    with fp:
        _check_upload_size(size, label, limits)
        declared = _declared_entries(fp)
        if declared is not None and declared > limits.max_members:
            raise DataError(
                f"the zip archive has too many members: {declared:,} (limit {limits.max_members:,}); "
                "split it into smaller archives"
            )
        try:
            zf = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
            raise DataError(not_a_zip_message(label, _head(fp))) from None
        with zf:
            yield from _vetted_members(zf, label, limits, want, ignored)


def _head(fp, n: int = 512) -> bytes:
    fp.seek(0)
    return fp.read(n)


def not_a_zip_message(label: str, head: bytes) -> str:
    """Why a file that should be a zip cannot be opened, told by its first bytes: a zip whose end is missing
    (cut short while uploading or copying), a text file, or something else entirely."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return (f"{label} is an incomplete zip archive: it begins like a zip, but the list of files at its end is "
                "missing or broken (a file cut short while copying or uploading looks like this); "
                "create the zip again and upload it whole")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.strip() and "\x00" not in text:
        first = " ".join(text.split())[:40]
        return (f"{label} is not a zip archive but a text file (it begins \"{first}\"); upload a zip with one "
                "folder of images per class, or give a table of texts the name .csv or .tsv")
    return f"{label} is not a zip archive (it does not begin like one); upload a zip with one folder of images per class"


def _vetted_members(zf, label, limits, want, ignored):
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise DataError(
            f"the zip archive has too many members: {len(infos):,} (limit {limits.max_members:,}); "
            "split it into smaller archives"
        )
    chosen: list[tuple[str, zipfile.ZipInfo]] = []
    for info in infos:
        name = _safe_name(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"the zip archive contains a symbolic link: {info.filename!r}; symlinks are not allowed")
        if info.is_dir() or not name:
            continue
        if info.flag_bits & 0x1:
            raise DataError(f"the zip archive is password-protected ({info.filename!r}); upload an unencrypted zip")
        reason = ignore_reason(name)
        if reason:
            if ignored is not None:
                ignored.append((name, reason))
            continue
        if info.file_size > RATIO_GRACE_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise DataError(
                f"suspicious compression in the zip archive: {name!r} expands "
                f"{info.file_size / max(info.compress_size, 1):.0f}x (limit {limits.max_ratio:.0f}x); "
                "this looks like a zip bomb"
            )
        if want is not None and not want(name):
            continue
        chosen.append((name, info))

    declared_total = sum(info.file_size for _, info in chosen)
    if declared_total > limits.max_total_bytes:
        raise DataError(_total_message(declared_total, limits))

    total = 0
    for name, info in sorted(chosen, key=lambda t: t[0]):
        allowed = max(RATIO_GRACE_BYTES, limits.max_ratio * max(info.compress_size, 1))
        chunks, read = [], 0
        try:
            with zf.open(info) as member:
                while chunk := member.read(_CHUNK):
                    read += len(chunk)
                    total += len(chunk)
                    if total > limits.max_total_bytes:
                        raise DataError(_total_message(total, limits, "more than "))
                    if read > allowed:
                        raise DataError(
                            f"suspicious compression in the zip archive: {name!r} expands more than "
                            f"{limits.max_ratio:.0f}x; this looks like a zip bomb"
                        )
                    chunks.append(chunk)
        except DataError:
            raise
        except Exception as e:  # zlib.error, BadZipFile (CRC), NotImplementedError (method), EOFError...
            raise DataError(
                f"the zip archive is damaged: cannot read {name!r} ({type(e).__name__}: {e}); re-create the zip"
            ) from None
        yield name, b"".join(chunks)


def _total_message(total: int, limits: Limits, prefix: str = "") -> str:
    return (
        f"the data is too large uncompressed: {prefix}{_mib(total)} (limit {_mib(limits.max_total_bytes)}); "
        "use fewer or smaller files"
    )


def iter_folder(
    root: str | os.PathLike,
    limits: Limits = DEFAULT_LIMITS,
    *,
    want: Callable[[str], bool] | None = None,
    ignored: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[str, bytes]]:
    """The folder counterpart of `iter_members`, with the same skipping and caps.

    A local folder is the user's own, so symlinked files are followed (datasets
    are often assembled with links), but linked directories are not walked.
    """
    root = Path(root)
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for d in sorted(dirnames):
            reason = ignore_reason(rel_dir + d)
            if reason:
                dirnames.remove(d)
                if ignored is not None:
                    ignored.append((rel_dir + d + "/", reason))
        dirnames.sort()
        for f in sorted(filenames):
            rel = rel_dir + f
            reason = ignore_reason(rel)
            if reason:
                if ignored is not None:
                    ignored.append((rel, reason))
                continue
            if want is not None and not want(rel):
                continue
            files.append((rel, Path(dirpath) / f))
            if len(files) > limits.max_members:
                raise DataError(
                    f"the folder has too many files: more than {limits.max_members:,}; use a smaller dataset"
                )
    total = 0
    for rel, path in files:
        try:
            size = path.stat().st_size
            _check_upload_size(size, rel, limits)
            total += size
            if total > limits.max_total_bytes:
                raise DataError(_total_message(total, limits, "more than "))
            data = path.read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e}") from None
        yield rel, data
