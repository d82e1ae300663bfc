"""The objects every browser session shares, one per server process: the run store, the job manager, the session
store, and what the engine says about the data sets, the backbones and the device.

Streamlit's resource cache holds each of them once per process; nothing here reads or writes a browser session's
state. Nothing here imports torch at import time: the engine modules are imported inside the functions that need
them.
"""

from __future__ import annotations

import os
import threading

import streamlit as st

from tl_core.runs.jobs import JobManager
from tl_core.runs.sessions import SessionStore
from tl_core.runs.store import RunStore, default_root


def data_root() -> str:
    return str(default_root())


def at_exit(hook) -> None:
    """Run `hook` at interpreter exit before non-daemon threads are joined (the hook concurrent.futures uses)."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(hook)
        except RuntimeError:  # interpreter already shutting down
            pass


@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return RunStore(os.path.join(root, "runs.sqlite"))


def store() -> RunStore:
    return _store(data_root())


@st.cache_resource(show_spinner=False)
def _manager(root: str, max_concurrent: int) -> JobManager:
    manager = JobManager(_store(root), max_concurrent=max_concurrent, runner=None)  # $TL_RUNNER, default local
    _cancel_at_exit(manager)
    return manager


def _cancel_at_exit(manager: JobManager) -> None:
    """Stopping the server must not wait for every training run to finish: cancel them first.

    concurrent.futures joins its workers in a threading-atexit hook; hooks run in
    reverse order of registration, so this one (registered later) runs before that join.
    """
    def cancel_all() -> None:
        for job in manager.jobs():
            manager.cancel(job.job_id)

    at_exit(cancel_all)


def max_concurrent() -> int:
    try:
        return max(1, int(os.environ.get("TL_MAX_CONCURRENT_RUNS", "2")))
    except ValueError:
        return 2


def manager() -> JobManager:
    return _manager(data_root(), max_concurrent())


@st.cache_resource(show_spinner=False)
def _sessions(root: str) -> SessionStore:
    return SessionStore(os.path.join(root, "sessions"))


def sessions() -> SessionStore:
    """Each browser session's kept settings and upload on disk (tl_core.runs.sessions)."""
    return _sessions(data_root())


@st.cache_resource(show_spinner=False)
def builtins_info() -> list[dict]:
    from tl_core.inputs import data

    return data.list_builtins()


def builtin_info(name: str) -> dict | None:
    return next((b for b in builtins_info() if b["name"] == name), None)


#: One description at a time: the first text backbone imports transformers, and the background warm-up importing
#: it while a page did too failed with "cannot import name 'AutoConfig' from 'transformers'" (a half-built module).
_describe_lock = threading.Lock()


def describe_backbone(name: str) -> dict:
    """tl_core's description of a backbone, one at a time and without Streamlit's cache: safe on any thread."""
    from tl_core.models import backbones

    with _describe_lock:
        return backbones.describe(name)


@st.cache_resource(show_spinner=False, max_entries=64)
def describe(name: str) -> dict:
    return describe_backbone(name)


def backbone_names(family: str) -> list[str]:
    from tl_core.models import backbones

    return backbones.list_names(family)


@st.cache_resource(show_spinner=False)
def device_text() -> str:
    from tl_core.device import describe as describe_device
    from tl_core.device import pick_device

    return describe_device(pick_device("auto"))
