"""Runs in a small pool of worker processes, started and warmed with the server (the `local` runner).

A run that runs out of memory, segfaults or is killed with kill -9 then takes down one worker, not the server
and every student's page: the pool marks that run failed with one line, starts a replacement, and the next run
goes on. Each run trains on its config's thread count (one by default), so a server shares its cores by running
runs side by side, and a student's numbers never depend on how many classmates are training. Each worker imports
torch and warms the classroom demo once (the first click trains at once), takes one run at a time from its own
task queue, records it in the shared SQLite run store (WAL; the server reads it), and sends the engine's events
back on its own event queue. Cancel is a process-shared flag the training
loop checks every batch, as it checks the in-process token.

Spawned, not forked: the server has threads (Streamlit's, torch's), and a fork copies their locks held.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback

from tl_core.errors import MEMORY_ADVICE, RunnerError, UserError, failure_text
from tl_core.events import Cancelled, CancelToken, EventHandler, RunStarted
from tl_core.records import RunSummary
from tl_core.runs.runners.base import RunRequest
from tl_core.runs.store import RunStore

_log = logging.getLogger(__name__)
_DONE, _ERROR = "done", "error"  # the worker's messages besides engine events
POLL_S = 0.1  # how often the server looks at a silent worker (is it alive? was the run cancelled?)


class ProcessRunner:
    name = "local"

    def __init__(self, store: RunStore, workers: int = 2, *, warm: bool = True):
        self.store = store
        self.warm = warm
        self._ctx = mp.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.workers, self._started = max(1, int(workers)), 0
        for _ in range(self.workers):
            self._idle.put(self._start_worker())

    # ---- the pool ---------------------------------------------------------------
    def _start_worker(self) -> _Worker:
        with self._lock:
            index, self._started = self._started, self._started + 1
        fill = (index, self.workers) if self.warm else None
        worker = _Worker(self._ctx, str(self.store.path), fill)
        with self._lock:
            self._all.append(worker)
        return worker

    def _replace(self, dead: _Worker) -> _Worker:
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
        dead.close()
        return self._start_worker()

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (the load test measures their memory; a fault test kills one)."""
        with self._lock:
            return [w.process.pid for w in self._all if w.process.is_alive()]

    def busy_pid(self, job_id: str) -> int | None:
        with self._lock:
            return next((w.process.pid for w in self._all if w.job_id == job_id), None)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every worker has imported and warmed up (the launcher and the tests)."""
        deadline = time.time() + timeout
        with self._lock:
            workers = list(self._all)
        return all(w.ready.wait(max(0.0, deadline - time.time())) for w in workers)

    # ---- one run ----------------------------------------------------------------
    def run(self, request: RunRequest, emit: EventHandler, cancel: CancelToken) -> None:
        worker, failure = self._idle.get(), None
        try:
            worker, failure = self._run_on(worker, request, emit, cancel)
        finally:
            if not self._closed:
                self._idle.put(worker)
        if failure is not None:
            raise failure

    def _run_on(self, worker: _Worker, request: RunRequest, emit: EventHandler,
                cancel: CancelToken) -> tuple[_Worker, Exception | None]:
        """The worker to give back to the pool (this one, or its replacement when it died) and how the run
        failed, if it did."""
        worker.cancel.clear()
        worker.job_id = request.job_id
        worker.tasks.put((request.job_id, request.owner, request.config, request.dataset, request.plan))
        run_id, error = None, None
        try:
            while True:
                if cancel.cancelled:
                    worker.cancel.set()
                try:
                    kind, payload = worker.events.get(timeout=POLL_S)
                except queue.Empty:
                    if worker.process.is_alive():
                        continue
                    reason = worker.death_reason()
                    _log.warning("worker %s died during %s: %s", worker.process.pid, request.job_id, reason)
                    if run_id is not None:
                        self.store.finish(run_id, "failed", RunSummary(), reason)
                    return self._replace(worker), RunnerError(reason)
                if kind == _DONE:  # always the worker's last word on a run: nothing stale is left in the queue
                    break
                if kind == _ERROR:
                    error = payload
                else:
                    if isinstance(payload, RunStarted):
                        run_id = payload.run_id
                    emit(payload)
        finally:
            worker.job_id = None
        if error == "cancelled":
            return worker, Cancelled()
        return worker, None if error is None else RunnerError(error)

    def shutdown(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for w in workers:
            w.cancel.set()
            w.close()


_MAIN_LOCK = threading.Lock()


def _start_without_main_script(process) -> None:
    """Start a spawned worker without running the parent's `__main__` script again inside it. Streamlit installs
    the page script it runs (app.py, or an AppTest script) as `__main__`, and spawn re-runs a `__main__` that has a
    file in every child; a worker needs only tl_core, which `worker_main` imports."""
    main = sys.modules["__main__"]
    with _MAIN_LOCK:
        path = main.__dict__.pop("__file__", None)
        try:
            process.start()
        finally:
            if path is not None:
                main.__file__ = path


class _Worker:
    """One worker process and its queues (its own: a worker killed while writing cannot corrupt another's)."""

    def __init__(self, ctx, store_path: str, warm: tuple[int, int] | None):
        self.tasks, self.events, self.cancel, self.ready = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
        self.job_id: str | None = None
        self.process = ctx.Process(target=worker_main, name="tl-worker", daemon=True,
                                   args=(self.tasks, self.events, self.cancel, self.ready, store_path, os.getpid(), warm))
        _start_without_main_script(self.process)

    def death_reason(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
            why = " (most often the machine ran out of memory)" if -code == signal.SIGKILL else ""
            return (f"the worker process training this run was killed by {name}{why}; the server is fine and the "
                    f"next run starts on a new worker: {MEMORY_ADVICE}")
        return f"the worker process training this run exited unexpectedly (exit code {code}); the next run starts on a new worker"

    def close(self) -> None:
        try:
            self.tasks.put_nowait(None)
        except Exception:  # noqa: BLE001 - a dead worker's queue may be broken
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        for q in (self.tasks, self.events):
            q.cancel_join_thread()
            q.close()


# ---- inside the worker process ----------------------------------------------------------
def _exit_with_parent(parent_pid: int) -> None:
    """A server killed with kill -9 cannot stop its workers: each stops itself once its parent is gone, so the
    restarted server finds the run interrupted instead of a stray process still writing to it."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(0.5)


def worker_main(tasks, events, cancel_flag, ready, store_path: str, parent_pid: int,
                warm: tuple[int, int] | None) -> None:
    """One worker's life. `warm`: (this worker's index, the pool's size) when it should warm the demo up and fill
    its share of the demo's shared-cache entries; None for none."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server's terminal: the server cancels runs itself
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    os.environ["TL_WORKER_SERVER_PID"] = str(parent_pid)
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported; each run then sets its own count (prepare)
    from tl_core.device import use_cpu_threads
    from tl_core.runs.runners.inprocess import train_here

    use_cpu_threads(1)
    if warm:
        try:
            from tl_core.runs import demo

            demo.warm_up()
        except Exception as err:  # noqa: BLE001 - only a warm-up: the first run reports real problems
            print(f"Transfer Lab worker: warm-up failed: {err}", flush=True)
    store = RunStore(store_path)
    token = CancelToken(cancel_flag)  # the server sets it; the loop checks it every batch
    def emit(event) -> None:
        events.put(("event", event))

    ready.set()
    if warm:  # every activation and head search the demo's runs look up, into the shared cache, the pool side by
        try:  # side: its later frozen seeds then take a second, not ten, beside the from-scratch run (the 60 s demo)
            demo.fill_demo_cache(demo.fill_order(*warm), stop=lambda: not tasks.empty())
        except Exception as err:  # noqa: BLE001 - a run computes what is missing itself
            print(f"Transfer Lab worker: filling the demo's activation cache failed: {err}", flush=True)
    while True:
        task = tasks.get()
        if task is None:
            return
        job_id, owner, config, dataset, plan = task
        try:
            train_here(store, RunRequest(job_id, owner, config, dataset, plan), emit, token)
        except Cancelled:
            events.put((_ERROR, "cancelled"))
        except Exception as err:  # noqa: BLE001 - reported as the job's one line; a bug keeps its traceback here
            if not isinstance(err, UserError):
                traceback.print_exc()
            events.put((_ERROR, failure_text(err)))
        events.put((_DONE, None))
