"""Warming the server up, once per process and in the background, so the first click (the classroom demo) trains
at once and the Model page describes its backbones at once: the training engine imported, the run workers
started and warm, the demo's data, weights and frozen activations loaded, every backbone described.

The server answers from its first second: the pages are drawn while the warm-up runs, and Home's demo button
waits (disabled, with a caption) until `is_ready()`. The warm-up's heavy steps all come before that moment, so
the first click never competes with them for the interpreter.
"""

from __future__ import annotations

import logging
import threading
import time

import streamlit as st

from ui import services

_log = logging.getLogger(__name__)
_warm_lock = threading.Lock()
_warmed = False
_ready = threading.Event()
#: How long the warm-up waits for the run workers before it lets the demo start anyway (a run then waits for a
#: worker itself).
WORKERS_TIMEOUT_S = 300.0


def is_ready() -> bool:
    """Whether the warm-up's part that a first click needs (workers, demo, backbone descriptions) is done."""
    return _ready.is_set()


def wait_ready(timeout: float | None = None) -> bool:
    """Block until `is_ready()` (tests and scripts that click the demo on a fresh process)."""
    return _ready.wait(timeout)


def warm_demo() -> None:
    """Once per process: import the vision stack, decode the demo's data, read its weights, run one forward pass
    (in this process only when its runs train here: worker processes warm themselves up)."""
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        try:
            from tl_core.runs import demo

            demo.warm_up(trains_here=services.manager().runner.name == "thread")
        except Exception as err:  # only a warm-up: the first run reports real problems itself
            _log.warning("demo warm-up failed: %s", err)
        _warmed = True


def _wait_for_workers(jobs) -> None:
    wait = getattr(jobs.runner, "wait_ready", None)  # worker processes warm up beside this process
    if wait is not None and not wait(WORKERS_TIMEOUT_S):
        _log.warning("the run workers were not ready after %.0f s; the demo starts anyway", WORKERS_TIMEOUT_S)


def _describe_backbones(stop: threading.Event) -> None:
    """Every backbone the Model page lists (the first text one imports transformers, which holds the interpreter
    for seconds: done before the demo button turns on, never while the demo's first epoch waits for it)."""
    from tl_core.models import backbones

    for family in ("vision", "text"):
        for name in backbones.list_names(family):
            if stop.is_set():
                return
            try:
                services.describe_backbone(name)
            except Exception as err:  # only a warm-up: the Model page reports real errors itself
                _log.warning("could not describe %s: %s", name, err)


def _after_ready(jobs, stop: threading.Event) -> None:
    """What only later pages need: the Inspect page's imports, and (runs training in this process) the demo's
    frozen activations in the shared cache, between runs only."""
    try:
        import sklearn.decomposition  # noqa: F401
        import sklearn.model_selection  # noqa: F401
        import sklearn.neighbors  # noqa: F401
    except ImportError:
        pass
    try:
        if jobs.runner.name == "thread":  # worker processes fill the cache themselves as they warm up
            from tl_core.runs import demo

            while jobs.active_count() and not stop.is_set():
                time.sleep(0.5)
            demo.fill_demo_cache(stop=lambda: stop.is_set() or bool(jobs.active_count()))
    except Exception as err:  # only a warm-up: a run computes what is missing itself
        _log.warning("filling the demo's activation cache failed: %s", err)


def _warm(jobs, stop: threading.Event) -> None:
    start = time.perf_counter()
    try:
        import pandas  # noqa: F401  the pages' own imports, once
        import plotly.graph_objects  # noqa: F401

        from tl_core.engine import training  # noqa: F401

        warm_demo()
        _wait_for_workers(jobs)
        from tl_core.inputs import data

        data.list_builtins()  # Home and Data describe the built-in sets (the 37k-text one takes a while)
        _describe_backbones(stop)
    except Exception as err:  # only a warm-up: the pages report real problems themselves
        _log.warning("warm-up failed: %s", err)
    finally:
        _ready.set()
    _log.info("Transfer Lab: warm in %.1f s", time.perf_counter() - start)
    if not stop.is_set():
        _after_ready(jobs, stop)


@st.cache_resource(show_spinner=False)
def start_warmup() -> threading.Thread:
    """Once per process: start the warm-up thread (the launcher calls it before the server listens, a plain
    `streamlit run` on its first page).

    Pure tl_core calls (functools caches), no st.* in the thread. Not a daemon: a daemon thread stopped inside
    torch at exit aborts the process, so shutdown sets `stop` and waits for the step in hand.
    """
    jobs, stop = services.manager(), threading.Event()  # the run workers start now and warm up beside this process
    services.at_exit(stop.set)
    thread = threading.Thread(target=_warm, args=(jobs, stop), name="tl-warmup", daemon=False)
    thread.start()
    return thread
