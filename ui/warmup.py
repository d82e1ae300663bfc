"""Warming the server up, once per process, so the first click (the classroom demo) and the Model page start at
once: the training engine imported, the demo's data, weights and frozen activations loaded, every backbone
described.

`python -m ui.launch` calls `warm_demo` before the server listens; under a plain `streamlit run`, `start_warmup`
does it all in a background thread after the first page is drawn.
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


def warm_demo() -> None:
    """Once per process: import the vision stack, decode the demo's data, read its weights, run one forward pass.

    The launcher (`python -m ui.launch`) calls it before the server listens, so a page that answers is warm;
    under a plain `streamlit run` the background warm-up below does it instead.
    """
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


@st.cache_resource(show_spinner=False)
def start_warmup() -> threading.Thread:
    """Once per process, in the background: import the training engine, load the demo's data and weights,
    describe every backbone, so the first click (the classroom demo) and the Model page start at once.

    Pure tl_core calls (functools caches), no st.* in the thread. Describing waits while anything trains:
    a warm-up must never slow a run down. Not a daemon: a daemon thread stopped inside torch at exit aborts
    the process, so shutdown sets `stop` and waits for the step in hand.
    """
    from tl_core.models import backbones  # noqa: F401  imported on the script thread, before the thread starts
    from tl_core.runs import demo  # noqa: F401
    from tl_core.engine import training  # noqa: F401

    jobs, stop = services.manager(), threading.Event()

    def work() -> None:
        warm_demo()
        try:  # the Inspect page's first visit waited seconds for these
            import sklearn.decomposition  # noqa: F401
            import sklearn.model_selection  # noqa: F401
            import sklearn.neighbors  # noqa: F401
        except ImportError:
            pass
        try:  # the demo's frozen activations into the shared cache, between runs only: it yields to any run
            if jobs.runner.name == "thread":  # worker processes fill it themselves as they warm up (processes.py)
                while jobs.active_count() and not stop.is_set():
                    time.sleep(0.5)
                demo.fill_demo_cache(stop=lambda: stop.is_set() or bool(jobs.active_count()))
        except Exception as err:  # only a warm-up: a run computes what is missing itself
            _log.warning("filling the demo's activation cache failed: %s", err)
        for family in ("vision", "text"):
            for name in backbones.list_names(family):
                while jobs.active_count() and not stop.is_set():
                    time.sleep(0.5)
                if stop.is_set():
                    return
                try:
                    services.describe_backbone(name)
                except Exception:  # only a warm-up: the page reports real errors itself
                    pass

    services.at_exit(stop.set)
    thread = threading.Thread(target=work, name="tl-warmup", daemon=False)  # not inherited from the script thread
    thread.start()
    return thread
