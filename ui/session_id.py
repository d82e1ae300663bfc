"""The browser session's id: what its runs, kept settings and upload are filed under.

It is mirrored in the URL (`?s=...`), so a refresh, a second tab or the same URL on another computer opens the
same session and gets its settings, upload and runs back.
"""

from __future__ import annotations

import uuid

import streamlit as st

from tl_core.runs.sessions import SESSION_ID_RE

OWNER_RE = SESSION_ID_RE
_OWNER = "owner"


def ensure_owner() -> str:
    """One id per browser session: the URL's if it is a valid id, else a new one; the URL always shows it."""
    ss = st.session_state
    if _OWNER not in ss:
        from_url = st.query_params.get("s", "")
        ss[_OWNER] = from_url if OWNER_RE.match(from_url or "") else uuid.uuid4().hex[:16]
    if st.query_params.get("s") != ss[_OWNER]:
        st.query_params["s"] = ss[_OWNER]
    return ss[_OWNER]


def owner() -> str:
    return st.session_state.get(_OWNER) or ensure_owner()
