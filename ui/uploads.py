"""The session's uploaded data set: reading it once per content and columns, keeping it for a refresh, and the
errors to show about it.

An accepted upload lives in the browser session (its bytes, its name and the loaded Dataset) and, by name and
content, on the server (`tl_core.runs.sessions`): a new Streamlit session on the same URL reads it again on first
use (`restore_upload`). A file that fails to load never replaces the loaded one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui import settings
from ui.messages import user_error
from ui.services import sessions
from ui.session_id import owner

_log = logging.getLogger(__name__)
#: Session-state keys. The accepted upload: its Dataset, bytes, file name and `upload_key`.
_DATASET, _BYTES, _NAME, _KEY = "upload_ds", "upload_bytes", "upload_name", "upload_key"
#: The last file that failed to load (its `upload_key`) and why; why the stored upload could not be read again.
_FAILED_KEY, _ERROR, _RESTORE_ERROR = "upload_failed_key", "upload_error", "upload_restore_error"
_RESTORED = "_upload_restored"


@dataclass(frozen=True)
class LoadedUpload:
    name: str
    raw: bytes
    dataset: Any  # tl_core.inputs.data.Dataset
    key: tuple[str, str, str] | None


def upload_key(raw: bytes, text_column: str, label_column: str) -> tuple[str, str, str]:
    """What identifies a loaded upload: its content and the columns it was read with."""
    return hashlib.sha256(raw).hexdigest(), text_column or "", label_column or ""


def upload_data_name(name: str, key: tuple[str, str, str] | None) -> str:
    """The runs' `data` name for an upload: the file name and the start of its content hash, so runs on two
    different files that share a name are never offered as runs on the same data."""
    return f"upload:{name}@{key[0][:8]}" if key else f"upload:{name}"


def loaded() -> LoadedUpload | None:
    """The upload this session uses, if one is loaded."""
    ss = st.session_state
    if ss.get(_DATASET) is None:
        return None
    return LoadedUpload(ss.get(_NAME, ss[_DATASET].name), ss.get(_BYTES), ss[_DATASET], ss.get(_KEY))


def accept_upload(name: str, raw: bytes, ds, key: tuple[str, str, str], *, save: bool = True) -> None:
    """`ds` (read from `raw`) becomes the session's data, here and, with `save`, on the server."""
    ss = st.session_state
    ss.update({_DATASET: ds, _BYTES: raw, _NAME: name, _KEY: key})
    for stale in (_FAILED_KEY, _ERROR, _RESTORE_ERROR):
        ss.pop(stale, None)
    if save:
        try:
            sessions().save_upload(owner(), name, raw)
        except (OSError, ValueError) as err:
            _log.warning("could not keep the upload of session %s: %s", owner(), err)
            ss[_RESTORE_ERROR] = f"{name} is loaded, but could not be kept for a refresh: {err}"


def try_load(name: str, raw: bytes, key: tuple[str, str, str]) -> None:
    """Load an upload once per (content, columns); a failure never replaces the loaded dataset."""
    ss = st.session_state
    text_column, label_column = key[1], key[2]
    if key in (ss.get(_KEY), ss.get(_FAILED_KEY)):
        return
    from tl_core.inputs import data

    try:
        ds = data.load_upload(name, raw, text_column=text_column or None, label_column=label_column or None)
    except Exception as err:  # DataError and friends: one line, nothing lost
        message = user_error(err) or f"could not read {name}: {type(err).__name__}: {err}"
        ss[_FAILED_KEY] = key
        ss[_ERROR] = message if name in message else f"{name}: {message}"
        return
    accept_upload(name, raw, ds, key)


def failure(key: tuple[str, str, str]) -> str | None:
    """Why the file with this content could not be loaded, if its last try failed (with any columns)."""
    failed = st.session_state.get(_FAILED_KEY)
    if failed is not None and failed[0] == key[0]:
        return st.session_state.get(_ERROR, "the upload could not be read")
    return None


def restore_problem() -> str | None:
    """Why the session's upload is not kept for a refresh, or could not be read back after one."""
    return st.session_state.get(_RESTORE_ERROR) or None


def restore_upload() -> None:
    """Once per browser session: load the session's stored upload (read with the kept CSV columns)."""
    ss = st.session_state
    if ss.get(_RESTORED) or ss.get(_DATASET) is not None:
        return
    ss[_RESTORED] = True
    try:
        stored = sessions().read_upload(owner())
    except (OSError, ValueError):
        stored = None
    if stored is None:
        return
    name, raw = stored
    text_column, label_column = settings.get("text_column") or "", settings.get("label_column") or ""
    from tl_core.inputs import data

    try:
        ds = data.load_upload(name, raw, text_column=text_column or None, label_column=label_column or None)
    except Exception as err:  # noqa: BLE001 - shown on the Data page; the student uploads it again
        ss[_RESTORE_ERROR] = f"Your earlier upload {name} could not be read again: {user_error(err) or err}"
        return
    accept_upload(name, raw, ds, upload_key(raw, text_column, label_column), save=False)


def clear_upload() -> None:
    """Forget the session's upload, here and on the server (the Data page's Remove button)."""
    ss = st.session_state
    for key in (_DATASET, _BYTES, _NAME, _KEY, _FAILED_KEY, _ERROR, _RESTORE_ERROR):
        ss.pop(key, None)
    try:
        sessions().clear_upload(owner())
    except (OSError, ValueError) as err:
        _log.warning("could not clear the upload of session %s: %s", owner(), err)
