"""Runs trainings off the UI thread, a few at a time, and keeps a snapshot of each that any thread may read.

Streamlit reruns its script on every click, so training must not live in the
script: a worker thread consumes the engine's event stream into a Job, and the
page polls `snapshot()`. A limit on concurrent runs keeps a classroom server
alive; extra runs wait in a queue and know their place in it.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tl_core.config import TrainConfig
from tl_core.errors import UserError
from tl_core.events import CancelToken, EpochMetrics, Event, Message, RunFinished, RunStarted, StepProgress
from tl_core.runs.store import RunStore



@dataclass
class Job:
    job_id: str
    owner: str
    config: TrainConfig
    label: str = ""
    state: str = "queued"  # queued | preparing | running | completed | cancelled | failed
    run_id: str | None = None
    device: str | None = None
    classes: list[str] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    trainable_params: int = 0
    total_params: int = 0
    cached_boundary: str | None = None
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    global_step: int = 0
    total_steps: int = 0
    loss: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    history: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    error: str | None = None
    submitted_at: float = field(default_factory=time.time)
    queue_position: int = 0
    after: str | None = None  # another job's id: this one starts once that one has ended
    waiting_for: str = ""  # that job's label while it has not ended

    @property
    def done(self) -> bool:
        return self.state in ("completed", "cancelled", "failed")

    @property
    def progress(self) -> float:
        return self.global_step / self.total_steps if self.total_steps else 0.0


class JobManager:
    def __init__(self, store: RunStore, max_concurrent: int = 2):
        self.store = store
        self.max_concurrent = max(1, int(max_concurrent))
        self._pool = ThreadPoolExecutor(max_workers=self.max_concurrent, thread_name_prefix="tl-train")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._cancel: dict[str, CancelToken] = {}
        self._ended: dict[str, threading.Event] = {}
        self._ids = itertools.count(1)

    # ---- commands ------------------------------------------------------------------
    def submit(self, config: TrainConfig, *, owner: str, dataset=None, label: str = "",
               after: str | None = None) -> str:
        """Queue a run; `dataset` is an already loaded upload (built-ins load by name in the worker).

        With `after` (an earlier job's id) the run starts only once that job has ended, so a quick run
        can have both cores to itself and show its curve at once.
        """
        with self._lock:
            if after is not None and after not in self._jobs:
                raise KeyError(f"no job {after} to wait for")
            job_id = f"job{next(self._ids)}"
            self._jobs[job_id] = Job(job_id, owner, copy.deepcopy(config), label, epochs=config.epochs, after=after)
            self._cancel[job_id] = CancelToken()
            self._ended[job_id] = threading.Event()
        self._pool.submit(self._work, job_id, dataset)
        return job_id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            self._cancel[job_id].cancel()
            if job.state == "queued":
                job.state = "cancelled"
                self._ended[job_id].set()

    # ---- queries ----------------------------------------------------------------------
    def snapshot(self, job_id: str) -> Job | None:
        """A deep copy: the caller may read it while the worker keeps writing."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            snap = copy.deepcopy(job)
            before = self._jobs.get(job.after) if job.after else None
            snap.waiting_for = before.label or before.job_id if before is not None and not before.done else ""
        snap.queue_position = self._queue_position(job_id)
        return snap

    def jobs(self, owner: str | None = None) -> list[Job]:
        with self._lock:
            ids = [j.job_id for j in self._jobs.values() if owner is None or j.owner == owner]
        return [s for s in (self.snapshot(i) for i in ids) if s is not None]

    def active_count(self) -> int:
        with self._lock:
            return sum(j.state in ("preparing", "running") for j in self._jobs.values())

    def _queue_position(self, job_id: str) -> int:
        with self._lock:
            queued = [j.job_id for j in self._jobs.values() if j.state == "queued"]
        return queued.index(job_id) + 1 if job_id in queued else 0

    def wait(self, job_id: str, timeout: float = 600.0) -> Job:
        """Block until the job ends (tests and the CLI; the UI polls instead)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            snap = self.snapshot(job_id)
            if snap is None or snap.done:
                return snap
            time.sleep(0.05)
        raise TimeoutError(f"{job_id} still running after {timeout}s")

    # ---- the worker -----------------------------------------------------------------------
    def _update(self, job_id: str, **changes) -> None:
        with self._lock:
            job = self._jobs[job_id]
            for k, v in changes.items():
                setattr(job, k, v)

    def _on_event(self, job_id: str, event: Event) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if isinstance(event, RunStarted):
                job.state, job.run_id, job.device, job.classes = "running", event.run_id, event.device, event.classes
                job.n_train, job.n_val, job.epochs = event.n_train, event.n_val, event.epochs
                job.trainable_params, job.total_params = event.trainable_params, event.total_params
                job.cached_boundary, job.steps_per_epoch = event.cached_boundary, event.steps_per_epoch
                job.total_steps = event.epochs * event.steps_per_epoch
            elif isinstance(event, StepProgress):
                job.epoch, job.step, job.global_step = event.epoch, event.step, event.global_step
                job.loss, job.elapsed_s, job.eta_s = event.loss, event.elapsed_s, event.eta_s
            elif isinstance(event, EpochMetrics):
                job.history.append(event.row())
            elif isinstance(event, Message):
                job.messages.append(event.text)
            elif isinstance(event, RunFinished):
                job.summary, job.error = dict(event.summary), event.error
                job.state = event.status

    def _work(self, job_id: str, dataset) -> None:
        try:
            self._run_job(job_id, dataset)
        finally:
            self._ended[job_id].set()

    def _run_job(self, job_id: str, dataset) -> None:
        from tl_core.engine.training import fit, prepare

        token = self._cancel[job_id]
        job = self.snapshot(job_id)
        if job.after:  # submitted earlier, so it already holds a worker or ended: no deadlock
            while not self._ended[job.after].wait(0.05) and not token.cancelled:
                pass
        if token.cancelled:
            self._update(job_id, state="cancelled")
            return
        self._update(job_id, state="preparing")
        try:
            prep = prepare(job.config, dataset)
            if token.cancelled:
                self._update(job_id, state="cancelled")
                return
            callbacks = [self.store.recorder(owner=job.owner, model=prep.model), lambda e: self._on_event(job_id, e)]
            fit(prep, callbacks=callbacks, cancel=token)
        except Exception as err:  # shown in the UI as one line; the traceback only for real bugs
            user_error = isinstance(err, UserError)
            message = str(err) if user_error else f"{type(err).__name__}: {err}"
            if not user_error:
                traceback.print_exc()
            self._update(job_id, state="failed", error=message)

    def shutdown(self) -> None:
        with self._lock:
            tokens = list(self._cancel.values())
        for t in tokens:
            t.cancel()
        self._pool.shutdown(wait=True)
