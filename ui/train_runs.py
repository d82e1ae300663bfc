"""The Train page's session state: starting a run, why a start failed, and which of the session's runs the page
shows (the newest, unless another was picked while that one was the newest)."""

from __future__ import annotations

import streamlit as st

from ui import messages
from ui.data_choice import current_data, load_choice_dataset
from ui.run_config import build_config
from ui.services import manager
from ui.session_id import owner

VIEW_KEY = "train_view"  # the run picker's widget key
_ACTIVE = "active_job"  # the job the last click on Start submitted
_PICK = "_train_pick"  # (the run picked in the list, the newest run when it was picked)
_NEWEST = "_train_newest"
_START_ERROR = "start_error"


def start_run() -> None:
    """The only place a run starts: the Start button's callback (runs once per click)."""
    messages.clear_note(_START_ERROR)
    try:
        import tl_core

        choice = current_data()
        config = build_config(choice)
        plan = tl_core.plan_for(config, load_choice_dataset(choice))  # the plan the page showed travels with the run
        job_id = manager().submit(config, owner=owner(), dataset=choice.dataset, label="train", plan=plan)
    except Exception as err:
        messages.leave_note(_START_ERROR, messages.error_text(err))
        return
    st.session_state[_ACTIVE] = job_id
    st.session_state.pop(_PICK, None)  # the new run is the one to watch


def start_error() -> str | None:
    """Why the last click on Start did not start a run; shown until the next click."""
    return messages.note(_START_ERROR)


def shown_run(keys: list[str]) -> str:
    """Before drawing the run picker: the run to show of `keys` (newest first), put in the picker."""
    ss = st.session_state
    newest = keys[0]
    pick = ss.get(_PICK)
    ss[VIEW_KEY] = pick[0] if pick and pick[1] == newest and pick[0] in keys else newest
    ss[_NEWEST] = newest
    return ss[VIEW_KEY]


def run_picked() -> None:
    """The run picker's callback: the pick holds until a newer run appears."""
    st.session_state[_PICK] = (st.session_state[VIEW_KEY], st.session_state.get(_NEWEST))
