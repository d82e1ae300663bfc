"""What bench/bench_classroom.py measures beside the pages: memory, the shared cache's forward passes, and the
server-side moments of every run (the run store's `times`).

Server-side timings come from the app's own records, never from a page: the job manager stamps when a page queued
a run (`submitted`), and the run store when the run's first event, first epoch and last event were recorded where it
trained (`started`, `first_epoch`, `finished`; tl_core/runs/store.py). `first_epoch` is the server-side first
point: the moment the first curve point exists on the server, before any page polls for it.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from pathlib import Path

STAGES = ("submitted", "started", "first_epoch", "finished")


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between the nearest ranks; None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def spread(values: list[float]) -> dict:
    """{"median", "p95"} in seconds, two decimals (None without values)."""
    r = lambda v: None if v is None else round(v, 2)  # noqa: E731
    return {"median": r(percentile(values, 50)), "p95": r(percentile(values, 95))}


# ---- the shared activation cache's counter ------------------------------------------------------------------
def forward_passes(data_dir: Path) -> int | None:
    """The shared activation cache's count of backbone forward passes under `data_dir` (None: no such module)."""
    try:
        cache = importlib.import_module("tl_core.engine.activation_cache")
    except ImportError:
        return None
    counter = getattr(cache, "forward_passes", None)
    if counter is None:
        return None
    saved = {k: os.environ.get(k) for k in ("TL_DATA_DIR", "TL_ACTIVATION_CACHE_DIR")}
    os.environ["TL_DATA_DIR"] = str(data_dir)
    os.environ.pop("TL_ACTIVATION_CACHE_DIR", None)
    try:
        return int(counter())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def settled_forward_passes(data_dir: Path, quiet_s: float = 8.0, timeout: float = 240.0, log=print) -> int | None:
    """The counter once the workers' warm-up has stopped adding to it (they fill the classroom demo's entries as
    they start): the class's own passes are then the difference after the clicks."""
    last, since, deadline = forward_passes(data_dir), time.monotonic(), time.monotonic() + timeout
    while last is not None and time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(1.0)
        now = forward_passes(data_dir)
        if now != last:
            log(f"  warm-up still filling the activation cache ({now} passes)")
            last, since = now, time.monotonic()
    return last


# ---- memory -----------------------------------------------------------------------------------------------
class MemorySampler:
    """Peak RSS (MB) of the server process, of its worker processes together and of its whole process tree, of the
    browser (this process's other descendants) and of this process (the bench and its light clients), sampled every
    `every` seconds in a thread."""

    def __init__(self, server_pid: int, every: float = 0.5):
        import psutil

        self._psutil = psutil
        self.server = psutil.Process(server_pid)
        self.me = psutil.Process()
        self.every = every
        self.peak = {"server": 0.0, "workers": 0.0, "total": 0.0, "browser": 0.0, "bench": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def _is_worker(proc) -> bool:
        cmd = " ".join(proc.cmdline())
        return "multiprocessing" in cmd and "resource_tracker" not in cmd

    def _rss(self, proc) -> float:
        try:
            return proc.memory_info().rss / 2**20
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
            return 0.0

    def sample(self) -> None:
        ps = self._psutil
        try:
            children = self.server.children(recursive=True)
        except ps.NoSuchProcess:
            return
        server = self._rss(self.server)
        workers = 0.0
        for c in children:
            try:
                if self._is_worker(c):
                    workers += self._rss(c)
            except (ps.NoSuchProcess, ps.AccessDenied):
                pass
        total = server + sum(self._rss(c) for c in children)
        tree = {self.server.pid, *(c.pid for c in children)}
        browser = sum(self._rss(c) for c in self.me.children(recursive=True) if c.pid not in tree)
        values = {"server": server, "workers": workers, "total": total, "browser": browser, "bench": self._rss(self.me)}
        for key, value in values.items():
            self.peak[key] = max(self.peak[key], value)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


# ---- server-side timings ------------------------------------------------------------------------------------
def server_timeline(run: dict | None, click_s: float | None) -> dict[str, float]:
    """Seconds from a session's click to each stage its run reached on the server ({} without a run or a click).

    `submitted` is when the server ran the Start button's callback, so submitted minus the click is the time the
    click took to reach the server's script thread."""
    if not run or click_s is None:
        return {}
    times = run.get("times") or {}
    return {s: times[s] - click_s for s in STAGES if times.get(s) is not None}


def timeline_figures(timelines: list[dict[str, float]]) -> dict:
    """{stage: {median, p95}} over the sessions' timelines, and the queue wait (started - submitted)."""
    out = {s: spread([t[s] for t in timelines if s in t]) for s in STAGES}
    out["queue_wait"] = spread([t["started"] - t["submitted"] for t in timelines
                                if "started" in t and "submitted" in t])
    return out
