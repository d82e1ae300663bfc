"""A class of N students on one server: everyone presses *Start training* at once.

Starts one real server as `make run` does (`python -m ui.launch`, worker-process runner, a fresh TL_DATA_DIR),
waits until it has been up `--warm-s` seconds (20: the teacher opened it before the lesson) and has warmed up
(Home's demo button on: the server listens at once and warms up in the background), then opens N
browser sessions in one headless Debian chromium, each a separate browser context with its own session URL
(`/train?s=<id>`). Every session's settings are the defaults (feature extraction, mobilenet_v2) on a built-in set
(`--data`, default builtin:digits), kept on the server the way the Data page keeps a student's pick. All N
Start buttons are clicked at one wall-clock instant, scheduled inside each page, so the clicks land within a
few milliseconds of each other (the spread is reported). Each page then watches itself every 0.2 s: the run it
shows, when its learning curve got its first point, when its result appeared.

Per N it reports (`--json`: one JSON object per line, one line per N and cache setting):

  sessions            N, all of them real browser sessions
  runs_submitted      sessions whose page showed their queued or running job after the click
  runs_completed      of those, runs stored as completed under that session's owner
  runs_lost           submitted but never completed (failed, or never finished before --timeout): must be 0
  cross_talk          observations (one per session per 0.2 s tick) of a run on a session's Train page that the
                      run store says belongs to another owner (or to no one), plus any second job id on a page
  first_point_s       {median, p95} seconds from each session's click to the first point on its learning curve
  last_done_s         seconds from the click to the last session's result on screen
  peak_rss_mb         {server, workers, total}: peak resident memory, sampled every 0.5 s with psutil, of the
                      server process, of its worker processes together, and of the server and all its
                      children together (RSS: pages shared between processes count in each)
  backbone_forward_passes  runs that ran the frozen backbone over their images during the class, from the shared
                      activation cache's counter (tl_core.engine.activation_cache.forward_passes(), read before the
                      clicks and after the last run); null when that module is missing
  details             queued count, failures, click spread, browser memory, load average, the settings

`--no-cache` starts the server with TL_ACTIVATION_CACHE_MB=0; `--compare-cache` runs each N with the cache on and
then off (a fresh server each) and prints the off/on ratios of the first-point and last-done times in one run.

Usage: python bench/bench_classroom.py [--sessions 5,10,30] [--json] [--no-cache | --compare-cache]
       [--data builtin:digits] [--labels-per-class 0] [--val-per-class N] [--test-per-class N] [--image-size 0]
       [--warm-s 20] [--timeout 1800]
Exit status 0 when every N had every run completed, none lost and no cross-talk; 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ui.server_process import AppServer  # noqa: E402

#: Headless Debian chromium on a closed network: its own background connections off (they fail there and get
#: page connections refused with them).
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}  # a classroom projector


def chromium_path() -> str:
    """The system chromium ($TL_CHROMIUM, /usr/bin/chromium or on PATH); exits with a clear message without one."""
    path = os.environ.get("TL_CHROMIUM") or "/usr/bin/chromium"
    found = path if os.path.exists(path) else shutil.which("chromium")
    if not found:
        raise SystemExit(f"chromium not found at {path} (apt-get install -y chromium, or set TL_CHROMIUM)")
    return found


def server_env(data_dir: Path, cache: bool) -> dict[str, str]:
    """A class's server: worker processes on this machine, the activation cache in its own data folder (the
    forward-pass counter then counts this class only), or no cache at all."""
    env = {"TL_RUNNER": "local", "TL_ACTIVATION_CACHE_DIR": str(data_dir / "activation-cache")}
    if not cache:
        env["TL_ACTIVATION_CACHE_MB"] = "0"
    return env


from tl_core.runs.sessions import SessionStore  # noqa: E402
from tl_core.runs.store import RunStore  # noqa: E402

DEFAULT_SESSIONS = (5, 10, 30)
WARM_S = 20.0  # the server has been up this long when the class clicks
CLICK_LEAD_MS = 1500  # the clicks are scheduled this far ahead of the moment they are sent to the pages
TICK_MS = 200  # how often each page looks at itself
PAGE_GRACE_S = 120  # a page that has not shown its result this long after its run ended on the server is stuck

#: Installed in each page after it loaded: follows what the page shows, from the click on.
OBSERVER_JS = """(tick) => {
  if (window.__tl) return;
  const t = window.__tl = {clickAt: null, firstPointAt: null, doneAt: null, failedAt: null, queued: false,
                           seen: {}, ticks: 0};
  document.addEventListener('click', (e) => {
    if (t.clickAt === null && e.target.closest && e.target.closest('.st-key-start_run')) t.clickAt = Date.now();
  }, true);
  const points = () => {
    const g = document.querySelector('.st-key-train_curves:not([data-stale="true"]) .js-plotly-plot');
    if (!g || !g.data) return 0;
    return g.data.filter((d) => d.fill !== 'toself').reduce((n, d) => n + ((d.x && d.x.length) || 0), 0);
  };
  setInterval(() => {
    if (t.clickAt === null) return;
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main) return;
    const now = Date.now();
    t.ticks += 1;
    const shown = new Set();
    for (const s of main.querySelectorAll('strong')) {
      const m = /^(Run|Job) ([0-9A-Za-z]+)$/.exec(s.textContent.trim());
      if (m) shown.add(m[1] + ' ' + m[2]);
    }
    for (const k of shown) t.seen[k] = (t.seen[k] || 0) + 1;
    if (t.firstPointAt === null && points() > 0) t.firstPointAt = now;
    if (!t.queued && main.textContent.includes('queued (position')) t.queued = true;
    if (t.doneAt === null && [...main.querySelectorAll('[data-testid="stMetric"]')]
        .some((m) => m.textContent.includes('Test accuracy'))) t.doneAt = now;
    if (t.failedAt === null && t.doneAt === null && main.querySelector('[data-testid="stAlertContentError"]'))
      t.failedAt = now;
  }, tick);
}"""
#: What a page that never showed its result shows instead: its run's part of the page, any exception, and
#: Streamlit's connection status (a page whose socket dropped says so there).
STUCK_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const text = main ? main.innerText : '';
  const at = text.search(/(Run|Job) [0-9A-Za-z]+/);
  const errors = [...document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]')]
    .map((e) => e.innerText.slice(0, 300));
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  return {run_part: at < 0 ? text.slice(-300) : text.slice(at, at + 400), errors,
          status: status ? status.innerText : ''};
}"""
CLICK_JS = """(at) => setTimeout(() => document.querySelector('.st-key-start_run button').click(),
                                   Math.max(0, at - Date.now()))"""


# ---- measuring ----------------------------------------------------------------------------------------------
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


class MemorySampler:
    """Peak RSS (MB) of the server process, of its worker processes together and of its whole process tree, and of
    the browser (this process's other descendants), sampled every `every` seconds in a thread."""

    def __init__(self, server_pid: int, every: float = 0.5):
        import psutil

        self._psutil = psutil
        self.server = psutil.Process(server_pid)
        self.every = every
        self.peak = {"server": 0.0, "workers": 0.0, "total": 0.0, "browser": 0.0}
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
        browser = sum(self._rss(c) for c in ps.Process().children(recursive=True) if c.pid not in tree)
        for key, value in (("server", server), ("workers", workers), ("total", total), ("browser", browser)):
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


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between the nearest ranks; None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _stored_done(store: RunStore, owner: str) -> bool:
    runs = store.list_runs(owner=owner, with_history=False)
    return bool(runs) and all(r["status"] in ("completed", "failed", "cancelled", "interrupted") for r in runs)


# ---- one class ----------------------------------------------------------------------------------------------
@dataclass
class Student:
    owner: str
    page: object
    watch: dict = field(default_factory=dict)  # window.__tl, as last read


@dataclass
class ClassResult:
    """One class's figures; `to_json()` is the line `--json` prints for it."""

    sessions: int
    cache: bool
    runs_submitted: int
    runs_completed: int
    runs_lost: int
    cross_talk: int
    first_point: list[float]
    last_done_s: float | None
    peak_rss_mb: dict
    backbone_forward_passes: int | None
    details: dict

    @property
    def ok(self) -> bool:
        return (self.runs_submitted == self.sessions and self.runs_completed == self.sessions
                and self.runs_lost == 0 and self.cross_talk == 0)

    def to_json(self) -> dict:
        r = lambda v: None if v is None else round(v, 2)  # noqa: E731
        return {"sessions": self.sessions, "runs_submitted": self.runs_submitted,
                "runs_completed": self.runs_completed, "runs_lost": self.runs_lost, "cross_talk": self.cross_talk,
                "first_point_s": {"median": r(percentile(self.first_point, 50)),
                                  "p95": r(percentile(self.first_point, 95))},
                "last_done_s": r(self.last_done_s),
                "peak_rss_mb": {k: round(v) for k, v in self.peak_rss_mb.items() if k != "browser"},
                "backbone_forward_passes": self.backbone_forward_passes,
                "cache": self.cache, "details": self.details}


def open_students(browser, url: str, sessions: SessionStore, n: int, settings: dict) -> list[Student]:
    """N fresh browser contexts, each on the Train page of its own session, Start enabled, observer installed."""
    from playwright.sync_api import expect

    students = []
    for _ in range(n):
        owner = uuid.uuid4().hex[:16]
        sessions.update_settings(owner, settings)  # what the Data and Model pages keep for a student's choices
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(120_000)
        page = ctx.new_page()
        page.goto(f"{url}/train?s={owner}", timeout=180_000)
        expect(page.locator(".st-key-start_run").get_by_role("button", name="Start training")).to_be_enabled(
            timeout=180_000)
        page.evaluate(OBSERVER_JS, TICK_MS)
        students.append(Student(owner, page))
    return students


def wait_until_warm(browser, url: str, timeout_s: float = 300.0) -> float:
    """Seconds until Home's demo button turned on: the server has warmed up (run workers ready, the demo's data
    and weights loaded), as a teacher who opened the app before the lesson sees it."""
    from playwright.sync_api import expect

    start = time.monotonic()
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        page = ctx.new_page()
        page.goto(f"{url}/", timeout=timeout_s * 1000)
        button = page.locator(".st-key-run_demo").get_by_role("button", name="Run the classroom demo")
        expect(button).to_be_enabled(timeout=timeout_s * 1000)
    finally:
        ctx.close()
    return time.monotonic() - start


def run_class(browser, server: AppServer, data_dir: Path, n: int, *, settings: dict, cache: bool,
              timeout: float = 1800.0, log=print) -> ClassResult:
    """Open N sessions on `server`, click Start in all of them at once, follow every page until its run ended."""
    sessions = SessionStore(data_dir / "sessions")
    store = RunStore(data_dir / "runs.sqlite")
    log(f"  server warm (Home's demo button on) after {wait_until_warm(browser, server.url):.0f} s more")
    t0 = time.monotonic()
    students = open_students(browser, server.url, sessions, n, settings)
    log(f"  {n} sessions open on the Train page in {time.monotonic() - t0:.0f} s")
    passes_before = settled_forward_passes(data_dir, log=log)
    load_before = os.getloadavg()
    with MemorySampler(server.proc.pid) as memory:
        at = int(time.time() * 1000) + CLICK_LEAD_MS + 50 * n  # every page has its timer set before it fires
        for s in students:
            s.page.evaluate(CLICK_JS, at)
        deadline, stored_end = time.monotonic() + timeout, None
        while True:
            time.sleep(1.0)
            for s in students:
                s.watch = s.page.evaluate("() => window.__tl")
            ended = sum(1 for s in students if s.watch.get("doneAt") or s.watch.get("failedAt"))
            if ended == n or time.monotonic() > deadline:
                break
            if stored_end is None and all(_stored_done(store, s.owner) for s in students):
                stored_end = time.monotonic()  # every run has ended on the server: the pages get PAGE_GRACE_S
            if stored_end is not None and time.monotonic() - stored_end > PAGE_GRACE_S:
                break
        time.sleep(2 * TICK_MS / 1000)  # a last look at every page after its run ended
        for s in students:
            s.watch = s.page.evaluate("() => window.__tl")
    passes_after = forward_passes(data_dir)
    load_after = os.getloadavg()

    clicks = [s.watch["clickAt"] for s in students if s.watch.get("clickAt")]
    first_click = min(clicks) if clicks else at
    submitted = completed = failed = queued = cross = duplicates = 0
    first_point, done, shown_own, live_points = [], [], 0, 0
    for s in students:
        w = s.watch
        seen = w.get("seen") or {}
        run_ids = [k.split(" ", 1)[1] for k in seen if k.startswith("Run ")]
        job_ids = [k for k in seen if k.startswith("Job ")]
        if seen:
            submitted += 1
        queued += bool(w.get("queued"))
        cross += sum(sorted(seen[k] for k in job_ids)[:-1])  # one session, one job: a second job id is another's
        for run_id in run_ids:
            record = store.get_run(run_id)
            if record is None or record.get("owner") != s.owner:
                cross += seen[f"Run {run_id}"]
        mine = store.list_runs(owner=s.owner, with_history=False)
        duplicates += max(0, len(mine) - 1)
        if any(r["status"] == "completed" for r in mine):
            completed += 1
        failed += bool(w.get("failedAt")) or any(r["status"] == "failed" for r in mine)
        # A queued run that started and finished between two looks at the page shows its curve only with its
        # result: its result time is then its first point (an upper bound; the figure never flatters).
        # The result can also show a tick before its finished chart does: whichever came first counts.
        seen_at = [t for t in (w.get("firstPointAt"), w.get("doneAt")) if t]
        if w.get("clickAt") and seen_at:
            first_point.append((min(seen_at) - w["clickAt"]) / 1000)
            live_points += bool(w.get("firstPointAt")) and w["firstPointAt"] == min(seen_at)
        if w.get("doneAt"):
            done.append((w["doneAt"] - first_click) / 1000)
        shown_own += bool(run_ids) and all(store.get_run(i) and store.get_run(i)["owner"] == s.owner for i in run_ids)
    stuck = [{"owner": s.owner, "seen": s.watch.get("seen"), "page": s.page.evaluate(STUCK_JS)}
             for s in students if not (s.watch.get("doneAt") or s.watch.get("failedAt"))]
    for s in students:
        s.page.context.close()
    passes = None if passes_before is None or passes_after is None else passes_after - passes_before
    details = {
        "clicks": len(clicks), "click_spread_s": round((max(clicks) - min(clicks)) / 1000, 3) if clicks else None,
        "runs_queued": queued, "runs_failed": failed, "pages_without_result": stuck, "duplicate_runs": duplicates,
        "pages_showing_own_run": shown_own, "first_points": len(first_point), "first_points_seen_live": live_points,
        "max_concurrent": int(os.environ.get("TL_MAX_CONCURRENT_RUNS", "2") or 2),
        "browser_peak_rss_mb": round(memory.peak["browser"]), "settings": settings,
        "load_avg_before": [round(x, 2) for x in load_before], "load_avg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }
    return ClassResult(n, cache, submitted, completed, max(0, submitted - completed), cross, first_point,
                       max(done) if len(done) == n else None, memory.peak, passes, details)


@contextlib.contextmanager
def class_server(cache: bool, *, warm_s: float, log=print):
    """A fresh server (its own data folder), up for `warm_s` seconds; yields (server, data_dir)."""
    data_dir = Path(tempfile.mkdtemp(prefix="tl_classroom_"))
    server = AppServer(data_dir, data_dir / "streamlit.log", env=server_env(data_dir, cache))
    try:
        healthy = server.wait_healthy(timeout=300)
        log(f"  server healthy {healthy:.1f} s after start (cache {'on' if cache else 'off'}); "
            f"waiting until it has been up {warm_s:g} s")
        time.sleep(max(0.0, warm_s - (time.perf_counter() - server.started - healthy)))
        yield server, data_dir
    finally:
        server.stop()


def ratios(on: ClassResult, off: ClassResult) -> dict:
    """Cache off over cache on: how many times slower the class is without the shared cache."""
    def div(a, b):
        return None if a is None or not b else round(a / b, 2)

    return {"sessions": on.sessions, "cache_off_over_on": {
        "first_point_median": div(percentile(off.first_point, 50), percentile(on.first_point, 50)),
        "first_point_p95": div(percentile(off.first_point, 95), percentile(on.first_point, 95)),
        "last_done_s": div(off.last_done_s, on.last_done_s)}}


def describe(res: ClassResult) -> str:
    j = res.to_json()
    fp = j["first_point_s"]
    return (f"N={res.sessions} cache {'on' if res.cache else 'off'}: {res.runs_submitted} submitted, "
            f"{j['details']['runs_queued']} queued, {res.runs_completed} completed, {res.runs_lost} lost, "
            f"cross-talk {res.cross_talk}; first point median {fp['median']} s, p95 {fp['p95']} s; last done "
            f"{j['last_done_s']} s; peak RSS server {j['peak_rss_mb']['server']} MB, workers "
            f"{j['peak_rss_mb']['workers']} MB, browser {j['details']['browser_peak_rss_mb']} MB; backbone "
            f"forward passes {res.backbone_forward_passes}; clicks spread {j['details']['click_spread_s']} s; "
            f"load {j['details']['load_avg_before'][0]} -> {j['details']['load_avg_after'][0]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default=",".join(map(str, DEFAULT_SESSIONS)), help="class sizes, e.g. 5,10,30")
    ap.add_argument("--json", action="store_true", help="one JSON object per line (per class size and cache setting)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--no-cache", action="store_true", help="server with TL_ACTIVATION_CACHE_MB=0")
    group.add_argument("--compare-cache", action="store_true", help="each N with the cache on, then off; ratios")
    ap.add_argument("--data", default="builtin:digits", help="the built-in set every student trains on")
    ap.add_argument("--labels-per-class", type=int, default=0, help="0: all (the default setting)")
    ap.add_argument("--val-per-class", type=int, default=None,
                    help="validation images per class (default: the setting's)")
    ap.add_argument("--test-per-class", type=int, default=None, help="test images per class (default: the setting's)")
    ap.add_argument("--image-size", type=int, default=0, help="0: auto (the default setting, 64 px on built-ins)")
    ap.add_argument("--warm-s", type=float, default=WARM_S, help="seconds the server is up before the clicks")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed for one class's runs")
    args = ap.parse_args(argv)
    try:
        sizes = [int(x) for x in args.sessions.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--sessions takes class sizes separated by commas, e.g. 5,10,30 (got {args.sessions!r})")
    if not sizes or min(sizes) < 1:
        ap.error("--sessions needs at least one class size of 1 or more")
    settings = {"data_source": args.data, "labels_per_class": args.labels_per_class}
    for key in ("val_per_class", "test_per_class", "image_size"):
        if getattr(args, key):
            settings[key] = getattr(args, key)
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    caches = [True, False] if args.compare_cache else [not args.no_cache]

    from playwright.sync_api import sync_playwright

    ok = True
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            for n in sizes:
                results = {}
                for cache in caches:
                    log(f"class of {n}, cache {'on' if cache else 'off'}:")
                    with class_server(cache, warm_s=args.warm_s, log=log) as (server, data_dir):
                        res = run_class(browser, server, data_dir, n, settings=settings, cache=cache,
                                        timeout=args.timeout, log=log)
                    results[cache] = res
                    ok = ok and res.ok
                    log("  " + describe(res))
                    if args.json:
                        print(json.dumps(res.to_json()), flush=True)
                if len(results) == 2:
                    cmp = ratios(results[True], results[False])
                    print(json.dumps(cmp) if args.json else f"  cache off / on: {cmp['cache_off_over_on']}",
                          flush=True)
        finally:
            browser.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
