"""The pages' pickers whose options come and go (runs, data sets, groups of runs, blocks): what they hold before
they are drawn, and what a callback takes from them.

These picks live for the browser session only (a refresh starts them afresh); the settings a refresh keeps are
in `ui.settings`. A value is put in a picker before it is drawn, so such pickers pass no `index=`/`default=`.
"""

from __future__ import annotations

from typing import Any, Callable, Collection

import streamlit as st


def _value(fallback: Any | Callable[[], Any]) -> Any:
    return fallback() if callable(fallback) else fallback


def keep_choice(key: str, options: Collection, fallback: Any | Callable[[], Any]) -> None:
    """Before drawing the picker `key`: keep its pick while it is still offered, else pick `fallback` (a value,
    or a function that finds it)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = _value(fallback)


def keep_picks(key: str, options: Collection, fallback: Callable[[], list]) -> None:
    """Before drawing the multi-picker `key`: drop the picks no longer offered; with none left (or none made
    yet), pick `fallback()`."""
    picked = st.session_state.get(key)
    still = [p for p in picked or [] if p in options]
    if picked is None or still != picked:
        st.session_state[key] = still or fallback()


def take_picks(key: str) -> list:
    """From a button's callback: what the multi-picker `key` holds, emptying it."""
    picked = list(st.session_state.get(key) or [])
    st.session_state[key] = []
    return picked


def choose(key: str, value: Any) -> None:
    """Before drawing the picker `key`: pick `value` (a link that names what to open)."""
    st.session_state[key] = value


def first_time(name: str) -> bool:
    """True the first time this browser session asks about `name`, False ever after."""
    flag = f"_first_{name}"
    if st.session_state.get(flag):
        return False
    st.session_state[flag] = True
    return True
