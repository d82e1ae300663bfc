"""What a page tells the user in words: one-line errors, and notes a button's callback leaves for the rerun it
triggers ("Deleted 2 run(s).", "The demo is already running").

A callback runs before the page is drawn again, so it cannot draw; it leaves a note under a name, and the page
shows it where it belongs: once (`take_note`) or on every rerun until the next click replaces it (`note`).
"""

from __future__ import annotations

import streamlit as st

from tl_core.errors import UserError

_PREFIX = "_note_"


def user_error(err: Exception) -> str | None:
    """The one-line message for errors a user can fix (tl_core.errors.UserError), else None."""
    return str(err) if isinstance(err, UserError) else None


def error_text(err: Exception) -> str:
    """The line to show for any error: a user's problem in its own words, anything else with its type."""
    return user_error(err) or f"{type(err).__name__}: {err}"


def leave_note(name: str, text: str) -> None:
    st.session_state[_PREFIX + name] = text


def note(name: str) -> str | None:
    """The note left under `name`; it stays until replaced or cleared."""
    return st.session_state.get(_PREFIX + name) or None


def take_note(name: str) -> str | None:
    """The note left under `name`, shown once: reading it removes it."""
    return st.session_state.pop(_PREFIX + name, None) or None


def clear_note(name: str) -> None:
    st.session_state.pop(_PREFIX + name, None)
