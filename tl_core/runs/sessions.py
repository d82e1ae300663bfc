"""What a browser session chose, kept on the server: its settings and its current upload.

A refresh, a second tab or another machine opening the same session URL (`?s=ID`) starts a new
Streamlit session with empty state; without this, every setting and the uploaded data would silently
fall back to the defaults and the next run would train those. So the app writes each changed setting
and each accepted upload here, keyed by the session id, and reads them back when a session starts.

Layout under `root` (the app uses `$TL_DATA_DIR/sessions`):

    <session id>.json     {"settings": {...}, "upload": {"name", "sha256", "size"} | null}
    uploads/<sha256>      the upload's bytes, stored once however many sessions hold them

Session ids come from URLs, so only ids matching `SESSION_ID_RE` name a file (no path tricks).
Uploads obey the same size cap as loading them (`Limits.max_upload_bytes`); settings are JSON scalars.
Every write goes to a temporary file that then replaces the target, so a crash never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tl_core.inputs.archive import DEFAULT_LIMITS, DataError, Limits

#: The session ids the app hands out (16 hex digits) and accepts from a URL.
SESSION_ID_RE = re.compile(r"^[0-9a-f]{8,32}$")
MAX_SETTING_KEY = 100
MAX_SETTING_TEXT = 2_000
MAX_NAME = 200
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredUpload:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SessionRecord:
    settings: dict[str, Any]
    upload: StoredUpload | None


def valid_session_id(session_id: Any) -> bool:
    return isinstance(session_id, str) and bool(SESSION_ID_RE.match(session_id))


def _check_id(session_id: str) -> str:
    if not valid_session_id(session_id):
        raise ValueError(f"not a session id: {session_id!r}")
    return session_id


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_SETTING_TEXT
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")  # JSON has no NaN or infinity
    return value is None or isinstance(value, (bool, int))


def storable_settings(settings: dict) -> dict[str, Any]:
    """The part of `settings` this store keeps: string keys with JSON scalar values (what widgets hold)."""
    return {k: v for k, v in settings.items()
            if isinstance(k, str) and 0 < len(k) <= MAX_SETTING_KEY and _is_scalar(v)}


def clean_name(name: str) -> str:
    """A file name fit to show: its last path part, no control characters, not too long."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "upload")[:MAX_NAME]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class SessionStore:
    """Settings and the current upload of each session id, on disk; safe to share between threads."""

    def __init__(self, root: str | os.PathLike, limits: Limits = DEFAULT_LIMITS):
        self.root = Path(root)
        self.uploads = self.root / "uploads"
        self.limits = limits
        self._lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------
    def _path(self, session_id: str) -> Path:
        return self.root / f"{_check_id(session_id)}.json"

    def _read(self, session_id: str) -> dict:
        try:
            raw = json.loads(self._path(session_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: a fresh session
            return {}
        return raw if isinstance(raw, dict) else {}

    @staticmethod
    def _upload_of(raw: dict) -> StoredUpload | None:
        up = raw.get("upload")
        if not isinstance(up, dict) or not _SHA_RE.match(str(up.get("sha256", ""))):
            return None
        return StoredUpload(clean_name(up.get("name", "")), up["sha256"], int(up.get("size") or 0))

    def load(self, session_id: str) -> SessionRecord:
        """The session's settings and upload reference; an unknown session gets empty ones."""
        raw = self._read(session_id)
        settings = raw.get("settings")
        return SessionRecord(storable_settings(settings) if isinstance(settings, dict) else {}, self._upload_of(raw))

    def read_upload(self, session_id: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the session's current upload, or None (none, gone, or not what was stored)."""
        ref = self.load(session_id).upload
        if ref is None:
            return None
        try:
            blob = (self.uploads / ref.sha256).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(blob).hexdigest() != ref.sha256:
            return None
        return ref.name, blob

    # ---- writing -------------------------------------------------------------------------
    def _write(self, session_id: str, raw: dict) -> None:
        raw["updated_at"] = time.time()
        _atomic_write(self._path(session_id), json.dumps(raw, sort_keys=True).encode("utf-8"))

    def update_settings(self, session_id: str, changes: dict) -> dict[str, Any]:
        """Merge `changes` into the stored settings (other keys stay as another tab left them); returns what was kept."""
        keep = storable_settings(changes)
        if not keep:
            return {}
        with self._lock:
            raw = self._read(session_id)
            settings = raw.get("settings") if isinstance(raw.get("settings"), dict) else {}
            settings.update(keep)
            raw["settings"] = settings
            self._write(session_id, raw)
        return keep

    def save_upload(self, session_id: str, name: str, data: bytes) -> StoredUpload:
        """Make `data` the session's current upload: stored once by content, within the upload size cap."""
        _check_id(session_id)
        if len(data) > self.limits.max_upload_bytes:
            raise DataError(f"{clean_name(name)} is too large to keep: {len(data) / 2**20:.0f} MiB "
                            f"(limit {self.limits.max_upload_bytes / 2**20:.0f} MiB)")
        sha = hashlib.sha256(data).hexdigest()
        ref = StoredUpload(clean_name(name), sha, len(data))
        blob = self.uploads / sha
        with self._lock:
            if not blob.is_file() or blob.stat().st_size != len(data):
                _atomic_write(blob, bytes(data))
            raw = self._read(session_id)
            old = self._upload_of(raw)
            raw["upload"] = {"name": ref.name, "sha256": sha, "size": ref.size}
            self._write(session_id, raw)
            if old is not None and old.sha256 != sha:
                self._prune(old.sha256)
        return ref

    def clear_upload(self, session_id: str) -> None:
        with self._lock:
            raw = self._read(session_id)
            old = self._upload_of(raw)
            if old is None:
                return
            raw["upload"] = None
            self._write(session_id, raw)
            self._prune(old.sha256)

    def _prune(self, sha: str) -> None:
        """Delete a stored upload no session refers to any more (with the lock held: a save writes its
        bytes and its reference under the same lock, so nothing half-saved is pruned)."""
        for path in self.root.glob("*.json"):
            try:
                ref = self._upload_of(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, AttributeError):
                continue
            if ref is not None and ref.sha256 == sha:
                return
        try:
            (self.uploads / sha).unlink()
        except OSError:
            pass
