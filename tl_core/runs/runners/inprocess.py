"""Train in the calling thread: the CLI's default and the simplest thing that works (no process to start).

A run that runs out of memory or crashes here takes the whole process with it, which is why the app's server
uses worker processes (`local`) instead.
"""

from __future__ import annotations

from tl_core.events import CancelToken, EventHandler
from tl_core.runs.runners.base import RunRequest
from tl_core.runs.store import RunStore


class ThreadRunner:
    name = "thread"

    def __init__(self, store: RunStore):
        self.store = store

    def run(self, request: RunRequest, emit: EventHandler, cancel: CancelToken) -> None:
        train_here(self.store, request, emit, cancel)

    def shutdown(self) -> None:
        pass


def train_here(store: RunStore | None, request: RunRequest, emit: EventHandler, cancel: CancelToken):
    """prepare + fit in this process, recorded in `store`; the one body every runner's worker runs."""
    from tl_core.engine.training import fit, prepare

    prep = prepare(request.config, request.dataset, request.plan)
    cancel.check()
    callbacks = [emit] if store is None else [store.recorder(owner=request.owner, model=prep.model), emit]
    return fit(prep, callbacks=callbacks, cancel=cancel)
