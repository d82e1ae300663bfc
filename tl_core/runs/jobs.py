"""Runs trainings off the UI thread, a few at a time, and keeps a snapshot of each that any thread may read.

Streamlit reruns its script on every click, so training must not live in the
script: a manager thread consumes the engine's event stream into a Job, and the
page polls `snapshot()`. A limit on concurrent runs keeps a classroom server
alive; extra runs wait in a queue and know their place in it.

Where a run trains is the runner's business (tl_core/runs/runners): a worker
process (the default), this process, or a Ray cluster. The manager, its queue
and its Jobs behave the same whichever it is.
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
from tl_core.errors import UserError, failure_text
from tl_core.records import JobState, RunSummary
from tl_core.events import (CancelToken, Cancelled, EpochMetrics, Event, Message, RunFinished, RunStarted,
                            StepProgress)
from tl_core.runs.runners import RunRequest, Runner, make_runner
from tl_core.runs.store import RunStore


def _from_event(event: str, name: str, default=None) -> property:
    """A read-only field of the job's latest `event` (e.g. the epoch of the last StepProgress)."""
    return property(lambda job: getattr(getattr(job, event), name) if getattr(job, event) is not None else default)


@dataclass
class Job:
    """One queued or running training, as its latest events: the worker stores what the engine sent and
    everything a page shows (epoch, loss, ETA, parameter counts) is read from those events."""

    job_id: str
    owner: str
    config: TrainConfig
    label: str = ""
    state: JobState = JobState.QUEUED
    started: RunStarted | None = None
    last_step: StepProgress | None = None
    epochs_seen: list[EpochMetrics] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    finished: RunFinished | None = None
    error: str | None = None  # also for a failure before the run started (bad settings, missing weights)
    # When it was queued, and when the manager got its first event, its first epoch and its end (Unix seconds;
    # the run store keeps the moments they were recorded where it trained: RunStore, `times`)
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    first_epoch_at: float | None = None
    ended_at: float | None = None
    queue_position: int = 0
    after: str | None = None  # another job's id: this one starts once that one has ended
    waiting_for: str = ""  # that job's label while it has not ended
    plan: dict | None = None  # the run plan sent with it (RunPlan.to_dict); the run's own, once it has started

    @property
    def done(self) -> bool:
        return self.state.done

    # what the pages read, from the latest events (before an event: nothing yet)
    run_id = _from_event("started", "run_id")
    device = _from_event("started", "device")
    classes = _from_event("started", "classes", [])
    steps_per_epoch = _from_event("started", "steps_per_epoch", 0)
    epoch = _from_event("last_step", "epoch", 0)
    step = _from_event("last_step", "step", 0)
    global_step = _from_event("last_step", "global_step", 0)
    loss = _from_event("last_step", "loss")
    eta_s = _from_event("last_step", "eta_s")

    @property
    def epochs(self) -> int:
        """The epochs the run trains: the plan's (a converge budget's, not --epochs), before it has started too."""
        if self.started:
            return self.started.epochs
        return self.plan["epochs"] if self.plan and self.plan.get("epochs") else self.config.epochs

    @property
    def depth_label(self) -> str:
        """"k=5", the recipe's words, or "" (tl_core.engine.plan.depth_label), once the job has a plan."""
        from tl_core.engine.plan import depth_label

        plan = self.started.plan if self.started and self.started.plan else self.plan
        return depth_label(plan) if plan else ""

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def history(self) -> list[dict]:
        return [e.row() for e in self.epochs_seen]

    @property
    def summary(self) -> RunSummary:
        return self.finished.summary if self.finished else RunSummary()

    @property
    def progress(self) -> float:
        return self.global_step / self.total_steps if self.total_steps else 0.0


class JobManager:
    def __init__(self, store: RunStore, max_concurrent: int = 2, runner: Runner | str | None = "thread"):
        """`runner`: a Runner, or its name ("local", "thread", "ray"; None: $TL_RUNNER, default "local").
        One manager thread per concurrent run; the local runner starts as many worker processes."""
        self.store = store
        self.max_concurrent = max(1, int(max_concurrent))
        self.runner = runner if hasattr(runner, "run") else make_runner(runner, store, self.max_concurrent)
        self._pool = ThreadPoolExecutor(max_workers=self.max_concurrent, thread_name_prefix="tl-train")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._cancel: dict[str, CancelToken] = {}
        self._ended: dict[str, threading.Event] = {}
        self._ids = itertools.count(1)

    # ---- commands ------------------------------------------------------------------
    def submit(self, config: TrainConfig, *, owner: str, dataset=None, label: str = "",
               after: str | None = None, plan=None) -> str:
        """Queue a run; `dataset` is an already loaded upload (built-ins load by name in the worker); `plan` is the
        RunPlan the page showed (tl_core.plan_for), sent with the run so that it trains exactly that.

        With `after` (an earlier job's id) the run starts only once that job has ended, so a quick run
        can have both cores to itself and show its curve at once.
        """
        with self._lock:
            if after is not None and after not in self._jobs:
                raise KeyError(f"no job {after} to wait for")
            job_id = f"job{next(self._ids)}"
            plan = plan if plan is None or isinstance(plan, dict) else plan.to_dict()
            self._jobs[job_id] = Job(job_id, owner, copy.deepcopy(config), label, after=after, plan=plan)
            self._cancel[job_id] = CancelToken()
            self._ended[job_id] = threading.Event()
        self._pool.submit(self._work, job_id, dataset, plan)
        return job_id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            self._cancel[job_id].cancel()
            if job.state == JobState.QUEUED:
                job.state, job.ended_at = JobState.CANCELLED, time.time()
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

    def state_of(self, job_id: str) -> tuple[JobState, int] | None:
        """The job's state and queue position (0 unless queued), without copying the job.

        What a live page asks twice a second to learn whether it must redraw in full: a lock and two fields,
        where a full snapshot copies the job with its results, for every page of a class.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            job_state = job.state
        return job_state, self._queue_position(job_id)

    def active_count(self) -> int:
        with self._lock:
            return sum(j.state.active for j in self._jobs.values())

    def _queue_position(self, job_id: str) -> int:
        with self._lock:
            queued = [j.job_id for j in self._jobs.values() if j.state == JobState.QUEUED]
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
            if job.state.done and job.ended_at is None:
                job.ended_at = time.time()

    def _on_event(self, job_id: str, event: Event) -> None:
        now = time.time()
        with self._lock:
            job = self._jobs[job_id]
            if isinstance(event, RunStarted):
                job.state, job.started, job.started_at = JobState.RUNNING, event, now
            elif isinstance(event, StepProgress):
                job.last_step = event
            elif isinstance(event, EpochMetrics):
                job.epochs_seen.append(event)
                job.first_epoch_at = job.first_epoch_at or now
            elif isinstance(event, Message):
                job.messages.append(event.text)
            elif isinstance(event, RunFinished):
                job.finished, job.error, job.state, job.ended_at = event, event.error, JobState(event.status), now
            submitted = job.submitted_at
        if isinstance(event, RunStarted):  # the runner recorded the run's row before it passed the event on
            self._mark_submitted(event.run_id, submitted)

    def _mark_submitted(self, run_id: str, at: float) -> None:
        try:
            self.store.mark_submitted(run_id, at)
        except Exception:  # noqa: BLE001 - a timing is never worth a run
            traceback.print_exc()

    def _work(self, job_id: str, dataset, plan: dict | None) -> None:
        try:
            self._run_job(job_id, dataset, plan)
        finally:
            self._ended[job_id].set()

    def _run_job(self, job_id: str, dataset, plan: dict | None) -> None:
        token = self._cancel[job_id]
        job = self.snapshot(job_id)
        if job.after:  # submitted earlier, so it already holds a worker or ended: no deadlock
            while not self._ended[job.after].wait(0.05) and not token.cancelled:
                pass
        if token.cancelled:
            self._update(job_id, state=JobState.CANCELLED)
            return
        self._update(job_id, state=JobState.PREPARING)
        try:
            self.runner.run(RunRequest(job_id, job.owner, job.config, dataset, plan),
                            lambda e: self._on_event(job_id, e),
                            token)
        except Cancelled:
            self._update(job_id, state=JobState.CANCELLED)
        except Exception as err:  # shown in the UI as one line; the traceback only for real bugs
            if not isinstance(err, UserError):
                traceback.print_exc()
            self._update(job_id, state=JobState.FAILED, error=failure_text(err))

    def shutdown(self) -> None:
        with self._lock:
            tokens = list(self._cancel.values())
        for t in tokens:
            t.cancel()
        self._pool.shutdown(wait=True)
        self.runner.shutdown()
