"""Ranks backbones off the UI thread, one ranking at a time, with a snapshot any thread may read.

The same pattern as tl_core.runs.jobs for training: a worker consumes the engine's event stream into a RankJob and
the page polls `snapshot()`. One worker: a ranking runs a few forward passes over every backbone, and two at
once would only halve each other's speed on a classroom server.
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
from tl_core.engine.ranking import DEFAULT_PER_CLASS, Ranking
from tl_core.errors import UserError
from tl_core.records import JobState
from tl_core.events import BackboneScored, CancelToken, Event, Message, ScoreProgress


@dataclass
class RankJob:
    job_id: str
    owner: str
    config: TrainConfig
    include_random: bool
    max_per_class: int | None = DEFAULT_PER_CLASS
    key: str = ""  # what the caller ranked (its settings), to find the job again
    state: JobState = JobState.QUEUED
    current: str = ""  # the backbone whose features are being extracted
    index: int = 0
    total: int = 0
    done_items: int = 0
    items: int = 0
    elapsed_s: float = 0.0
    scored: list[dict] = field(default_factory=list)  # BackboneScored events so far, as dicts
    messages: list[str] = field(default_factory=list)
    ranking: Ranking | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return JobState(self.state).done

    @property
    def progress(self) -> float:
        """Share of the work done: finished backbones plus the share of the current one's items."""
        if not self.total:
            return 0.0
        current = self.done_items / self.items if self.items and len(self.scored) < self.index else 0.0
        return min(1.0, (len(self.scored) + current) / self.total)


class RankJobs:
    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tl-rank")
        self._lock = threading.Lock()
        self._jobs: dict[str, RankJob] = {}
        self._cancel: dict[str, CancelToken] = {}
        self._ids = itertools.count(1)

    def submit(self, config: TrainConfig, *, owner: str, dataset=None, include_random: bool = False,
               max_per_class: int | None = DEFAULT_PER_CLASS, key: str = "") -> str:
        with self._lock:
            job_id = f"rank{next(self._ids)}"
            self._jobs[job_id] = RankJob(job_id, owner, copy.deepcopy(config), include_random, max_per_class, key)
            self._cancel[job_id] = CancelToken()
        self._pool.submit(self._work, job_id, dataset)
        return job_id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            self._cancel[job_id].cancel()
            if job.state == JobState.QUEUED:
                job.state = JobState.CANCELLED

    def snapshot(self, job_id: str) -> RankJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job) if job is not None else None

    def latest(self, owner: str, key: str | None = None) -> RankJob | None:
        """The owner's newest job (for these settings when `key` is given): a refresh finds its ranking again."""
        with self._lock:
            ids = [j.job_id for j in self._jobs.values() if j.owner == owner and key in (None, j.key)]
        return self.snapshot(ids[-1]) if ids else None

    def wait(self, job_id: str, timeout: float = 600.0) -> RankJob:
        deadline = time.time() + timeout
        while time.time() < deadline:
            snap = self.snapshot(job_id)
            if snap is None or snap.done:
                return snap
            time.sleep(0.05)
        raise TimeoutError(f"{job_id} still running after {timeout}s")

    def _on_event(self, job_id: str, event: Event) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if isinstance(event, ScoreProgress):
                job.current, job.index, job.total = event.backbone, event.index, event.total
                job.done_items, job.items, job.elapsed_s = event.done, event.items, event.elapsed_s
            elif isinstance(event, BackboneScored):
                job.index, job.total = event.index, event.total
                job.scored.append({k: v for k, v in event.__dict__.items() if k != "kind"})
            elif isinstance(event, Message):
                job.messages.append(event.text)

    def _work(self, job_id: str, dataset) -> None:
        from tl_core.engine.ranking import rank_backbones

        token = self._cancel[job_id]
        with self._lock:
            job = self._jobs[job_id]
            if token.cancelled:
                job.state = JobState.CANCELLED
                return
            job.state = JobState.RUNNING
            config, include_random, max_per_class = job.config, job.include_random, job.max_per_class
        try:
            ranking = rank_backbones(config, dataset=dataset, include_random=include_random,
                                     max_per_class=max_per_class, cancel=token,
                                     callbacks=[lambda e: self._on_event(job_id, e)])
        except Exception as err:  # shown as one line; the traceback only for real bugs
            user_error = isinstance(err, UserError)
            if not user_error:
                traceback.print_exc()
            with self._lock:
                job.state, job.error = JobState.FAILED, str(err) if user_error else f"{type(err).__name__}: {err}"
            return
        with self._lock:
            job.ranking, job.state, job.elapsed_s = ranking, JobState(ranking.status), ranking.seconds

    def cancel_all(self) -> None:
        with self._lock:
            ids = list(self._jobs)
        for job_id in ids:
            self.cancel(job_id)

    def shutdown(self) -> None:
        self.cancel_all()
        self._pool.shutdown(wait=True)
