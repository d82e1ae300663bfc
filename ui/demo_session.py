"""This session's classroom demo (Home): starting it once, cancelling it, and the jobs of its latest run, kept for
the session and found again in the job manager after a refresh."""

from __future__ import annotations

import streamlit as st

from tl_core.runs import demo
from tl_core.runs.jobs import Job
from ui import messages
from ui.services import manager
from ui.session_id import owner

_JOBS = "demo_jobs"  # the job ids of this session's latest demo
_NOTE = "demo"


def demo_configs():
    """The demo's runs (tl_core.runs.demo; $TL_DEMO_* shrink it for tests)."""
    return demo.configured_demo_configs()


def demo_jobs() -> list[Job]:
    """This session's latest demo: the ids kept in the session, or recovered from the manager after a refresh."""
    jobs = manager()
    ids = st.session_state.get(_JOBS)
    if not ids:
        mine = [j for j in jobs.jobs(owner()) if j.label.startswith("demo")]
        ids = [j.job_id for j in mine[-len(demo_configs()):]]
        if ids:
            st.session_state[_JOBS] = ids
    found = [jobs.snapshot(i) for i in ids or []]
    return [j for j in found if j is not None]


def start_demo() -> None:
    """The demo button's callback: a second click while the demo runs starts nothing and says so."""
    if any(not j.done for j in demo_jobs()):
        messages.leave_note(_NOTE, "The demo is already running: its runs are below.")
        return
    st.session_state[_JOBS] = demo.submit_demo(manager(), owner(), demo_configs())
    messages.clear_note(_NOTE)


def cancel_demo() -> None:
    for job in demo_jobs():
        manager().cancel(job.job_id)


def take_demo_note() -> str | None:
    """What the last click on the demo button has to say, once."""
    return messages.take_note(_NOTE)
