"""A class of N students on one server: everyone presses *Start training* at once.

Starts one real server as `make run` does (`python -m ui.launch`, worker-process runner, a fresh TL_DATA_DIR),
waits until it has been up `--warm-s` seconds (20: the teacher opened it before the lesson) and has warmed up
(Home's demo button on: the server listens at once and warms up in the background), then opens N sessions, each
with its own session URL (`/train?s=<id>`), set to the defaults (feature extraction, mobilenet_v2) on a built-in set
(`--data`, default builtin:digits), kept on the server the way the Data page keeps a student's pick:

  real browsers   one headless Debian chromium, a browser context per student. By default every student is one.
  light sessions  with `--light`, only `--browsers` students (5) get a browser; the others are light clients
                  (bench/light_client.py): a real Streamlit session over the server's websocket protocol, which
                  loads the page, polls its live run as a tab does and reads every update, but renders nothing.
                  Thirty browsers on the server's own two cores measure the laptop hosting thirty tabs; light
                  sessions leave those cores to the server, as a classroom's own computers do.

All N Start buttons are pressed at one wall-clock instant (scheduled inside each page, or in each light client),
so the clicks land within a few milliseconds of each other (the spread is reported). Each page then watches itself
every 0.2 s (a light session, every message): the run it shows, when its learning curve got its first point, when
its result appeared. The server's own records say when each run was submitted, started, recorded its first epoch
and finished (the run store's `times`; bench/classroom_measure.py).

Per N it reports (`--json`: one JSON object per line, one line per N and cache setting):

  sessions            N; `browsers` of them real browsers, `light_sessions` light clients
  runs_submitted      sessions whose page showed their queued or running job after the click
  runs_completed      of those, runs stored as completed under that session's owner
  runs_lost           submitted but never completed (failed, or never finished before --timeout): must be 0
  cross_talk          observations (a browser: one per 0.2 s tick; a light session: one per message) of a run on a
                      session's Train page that the run store says belongs to another owner (or to no one), plus
                      any second job id on a page
  stuck_pages         pages that never showed their result (nor a failure) although their run ended on the server:
                      each is listed in details.pages_without_result with what it showed instead: must be 0
  first_point_s       {median, p95} seconds from each real browser's click to the first point on its learning curve
                      (browser-side: the server sent it, the browser drew it)
  light_first_point_s {median, p95} the same for light sessions: when the update carrying the first point arrived
                      (the server sending it, give or take the loopback)
  server_first_point_s {median, p95} seconds from each session's click to its run's first epoch recorded on the
                      server (the first point exists there; every session, browser or light)
  server_s            {submitted, started, first_epoch, finished, queue_wait}: each {median, p95}, from the click
  last_done_s         seconds from the first click to the last session's result on screen (browser or light)
  server_last_finished_s  seconds from the first click to the last run finished on the server
  peak_rss_mb         {server, workers, total}: peak resident memory, sampled every 0.5 s with psutil, of the
                      server process, of its worker processes together, and of the server and all its
                      children together (RSS: pages shared between processes count in each)
  backbone_forward_passes  runs that ran the frozen backbone over their images during the class, from the shared
                      activation cache's counter (tl_core.engine.activation_cache.forward_passes(), read before the
                      clicks and after the last run); null when that module is missing
  details             queued count, failures, stuck pages, click spread, the browsers' own figures, browser and
                      bench memory, light-session traffic, the server process's CPU seconds during the class (and
                      per session: its click, its polls, its result), load average, the settings

`--no-cache` starts the server with TL_ACTIVATION_CACHE_MB=0; `--compare-cache` runs each N with the cache on and
then off (a fresh server each) and prints the off/on ratios of the first-point and last-done times in one run.
`--ray-address` trains the runs on a Ray cluster (TL_RUNNER=ray): the server-side times are then when the app
recorded each event it got back from the cluster.

Usage: python bench/bench_classroom.py [--sessions 5,10,30] [--light [--browsers 5]] [--json]
       [--no-cache | --compare-cache] [--ray-address HOST:6379] [--data builtin:digits] [--labels-per-class 0]
       [--val-per-class N] [--test-per-class N] [--image-size 0] [--warm-s 20] [--timeout 1800]
Exit status 0 when every N had every run completed, none lost, no cross-talk and no stuck page; 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.classroom_measure import (MemorySampler, forward_passes, percentile, server_timeline,  # noqa: E402
                                     settled_forward_passes, spread, timeline_figures)
from bench.classroom_pages import (CHROMIUM_ARGS, CLICK_JS, TICK_MS, Seat, chromium_path,  # noqa: E402
                                   open_light, open_students, read_seats, wait_until_warm)
from bench.light_client import LightClass  # noqa: E402
from tl_core.runs.sessions import SessionStore  # noqa: E402
from tl_core.runs.store import RunStore  # noqa: E402
from ui.server_process import AppServer  # noqa: E402

DEFAULT_SESSIONS = (5, 10, 30)
DEFAULT_BROWSERS = 5  # with --light: how many students get a real browser
WARM_S = 20.0  # the server has been up this long when the class clicks
CLICK_LEAD_MS = 1500  # the clicks are scheduled this far ahead of the moment they are sent to the pages
PAGE_GRACE_S = 120  # a page that has not shown its result this long after its run ended on the server is stuck


def server_env(data_dir: Path, cache: bool, ray_address: str | None = None) -> dict[str, str]:
    """A class's server: worker processes on this machine (or the runs on the Ray cluster at `ray_address`), the
    activation cache in its own data folder (the forward-pass counter then counts this class only), or no cache."""
    env = {"TL_RUNNER": "local", "TL_ACTIVATION_CACHE_DIR": str(data_dir / "activation-cache")}
    if ray_address:
        env.update(TL_RUNNER="ray", TL_RAY_ADDRESS=ray_address)
    if not cache:
        env["TL_ACTIVATION_CACHE_MB"] = "0"
    return env


def _stored_done(store: RunStore, owner: str) -> bool:
    runs = store.list_runs(owner=owner, with_history=False)
    return bool(runs) and all(r["status"] in ("completed", "failed", "cancelled", "interrupted") for r in runs)


# ---- one class ----------------------------------------------------------------------------------------------
@dataclass
class ClassResult:
    """One class's figures; `to_json()` is the line `--json` prints for it."""

    sessions: int
    browsers: int
    cache: bool
    runs_submitted: int
    runs_completed: int
    runs_lost: int
    cross_talk: int
    stuck_pages: int
    first_point: list[float]  # real browsers
    light_first_point: list[float]
    server: list[dict]  # per session: seconds from its click to each stage on the server
    last_done_s: float | None
    server_last_finished_s: float | None
    peak_rss_mb: dict
    backbone_forward_passes: int | None
    details: dict

    @property
    def ok(self) -> bool:
        return (self.runs_submitted == self.sessions and self.runs_completed == self.sessions
                and self.runs_lost == 0 and self.cross_talk == 0 and self.stuck_pages == 0)

    def to_json(self) -> dict:
        r = lambda v: None if v is None else round(v, 2)  # noqa: E731
        timeline = timeline_figures(self.server)
        return {"sessions": self.sessions, "browsers": self.browsers, "light_sessions": self.sessions - self.browsers,
                "runs_submitted": self.runs_submitted, "runs_completed": self.runs_completed,
                "runs_lost": self.runs_lost, "cross_talk": self.cross_talk, "stuck_pages": self.stuck_pages,
                "first_point_s": spread(self.first_point), "light_first_point_s": spread(self.light_first_point),
                "server_first_point_s": timeline["first_epoch"], "server_s": timeline,
                "last_done_s": r(self.last_done_s), "server_last_finished_s": r(self.server_last_finished_s),
                "peak_rss_mb": {k: round(self.peak_rss_mb[k]) for k in ("server", "workers", "total")},
                "backbone_forward_passes": self.backbone_forward_passes,
                "cache": self.cache, "details": self.details}


def run_class(browser, server: AppServer, data_dir: Path, n: int, *, browsers: int, settings: dict, cache: bool,
              timeout: float = 1800.0, log=print) -> ClassResult:
    """Open N sessions on `server` (`browsers` of them real), click Start in all of them at once, follow every page
    until its run ended."""
    sessions = SessionStore(data_dir / "sessions")
    store = RunStore(data_dir / "runs.sqlite")
    log(f"  server warm (Home's demo button on) after {wait_until_warm(server.url):.0f} s more")
    t0 = time.monotonic()
    seats = open_students(browser, server.url, sessions, browsers, settings) if browsers else []
    light = LightClass(server.url) if n > browsers else None
    try:
        if light is not None:
            seats += open_light(light, sessions, n - browsers, settings)
        log(f"  {n} sessions open on the Train page in {time.monotonic() - t0:.0f} s "
            f"({browsers} browsers, {n - browsers} light)")
        passes_before = settled_forward_passes(data_dir, log=log)
        load_before, cpu_before = os.getloadavg(), _cpu_s(server.proc.pid)
        with MemorySampler(server.proc.pid) as memory:
            at = int(time.time() * 1000) + CLICK_LEAD_MS + 50 * browsers  # every timer is set before it fires
            for s in seats:
                if s.page is not None:
                    s.page.evaluate(CLICK_JS, at)
            if light is not None:
                light.click_all(at)
            deadline, stored_end = time.monotonic() + timeout, None
            while True:
                time.sleep(1.0)
                read_seats(seats, light)
                if all(s.ended() for s in seats) or time.monotonic() > deadline:
                    break
                if stored_end is None and all(_stored_done(store, s.owner) for s in seats):
                    stored_end = time.monotonic()  # every run has ended on the server: the pages get PAGE_GRACE_S
                if stored_end is not None and time.monotonic() - stored_end > PAGE_GRACE_S:
                    break
            time.sleep(2 * TICK_MS / 1000)  # a last look at every page after its run ended
            read_seats(seats, light)
        server_cpu_s = _cpu_s(server.proc.pid) - cpu_before
        passes_after = forward_passes(data_dir)
        load_after = os.getloadavg()
        return _result(seats, store, n, browsers, cache, memory.peak, passes_before, passes_after, at,
                       {"server_cpu_s": round(server_cpu_s, 1), "load_avg_before": [round(x, 2) for x in load_before],
                        "load_avg_after": [round(x, 2) for x in load_after]})
    finally:
        for s in seats:
            if s.page is not None:
                s.page.context.close()
        if light is not None:
            light.close()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) the server process has used: its event loop, script threads and job manager,
    not its worker processes."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _stuck_record(s: Seat, store: RunStore) -> dict:
    """What a page that never showed its result showed, and what the server says of its run."""
    view = s.shows()
    runs = store.list_runs(owner=s.owner, with_history=False)
    return {"owner": s.owner, "kind": s.kind, "seen": s.watch.get("seen"), "page": view,
            "console": s.console[-10:] if s.page is not None else None,
            "server": [{"run_id": r["run_id"], "status": str(r["status"]), "times": r["times"]} for r in runs]}


def _result(seats: list[Seat], store: RunStore, n: int, browsers: int, cache: bool, peak: dict, passes_before,
            passes_after, at: int, extra: dict) -> ClassResult:
    clicks = [s.watch["clickAt"] for s in seats if s.watch.get("clickAt")]
    first_click = min(clicks) if clicks else at
    submitted = completed = failed = queued = cross = duplicates = 0
    first_point, light_first, done, server, shown_own, live_points, server_first = [], [], {}, [], {}, 0, 0
    clicked: list[float | None] = []  # each session's click (Unix seconds), beside its server timeline
    for s in seats:
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
            (first_point if s.page is not None else light_first).append((min(seen_at) - w["clickAt"]) / 1000)
            live_points += s.page is not None and bool(w.get("firstPointAt")) and w["firstPointAt"] == min(seen_at)
        if w.get("doneAt"):
            done[s.owner] = (w["doneAt"] - first_click) / 1000
        own = bool(run_ids) and all(store.get_run(i) and store.get_run(i)["owner"] == s.owner for i in run_ids)
        shown_own[s.kind] = shown_own.get(s.kind, 0) + own
        shown = next((r for r in mine if r["run_id"] in run_ids), mine[0] if mine else None)
        click_s = w["clickAt"] / 1000 if w.get("clickAt") else None
        timeline = server_timeline(shown, click_s)
        server.append(timeline)
        clicked.append(click_s)
        # the server recorded the first point before the page showed it (one clock: both on this machine)
        server_first += "first_epoch" in timeline and bool(seen_at) and (
            timeline["first_epoch"] <= (min(seen_at) - w["clickAt"]) / 1000 + 0.002)
    without = [_stuck_record(s, store) for s in seats if not s.ended()]
    # stuck: its run ended on the server, its page never said so (a run that never ended is lost, not stuck)
    stuck = [p for p in without if p["server"] and all(r["times"]["finished"] for r in p["server"])]
    finished = [t["finished"] + w_click - first_click / 1000 for t, w_click in zip(server, clicked) if "finished" in t]
    light_seats = [s for s in seats if s.light is not None]
    details = {
        "clicks": len(clicks), "click_spread_s": round((max(clicks) - min(clicks)) / 1000, 3) if clicks else None,
        "runs_queued": queued, "runs_failed": failed, "pages_without_result": without, "duplicate_runs": duplicates,
        "pages_showing_own_run": sum(shown_own.values()), "first_points": len(first_point) + len(light_first),
        "first_points_seen_live": live_points, "server_first_point_before_page": server_first,
        "browser": {"pages": browsers, "showing_own_run": shown_own.get("browser", 0),
                    "done": sum(1 for s in seats if s.page is not None and s.watch.get("doneAt")),
                    "last_done_s": max((done[s.owner] for s in seats if s.page is not None and s.owner in done),
                                       default=None)},
        "light": {"sessions": len(light_seats), "showing_own_run": shown_own.get("light", 0),
                  "done": sum(1 for s in light_seats if s.watch.get("doneAt")),
                  "messages": sum(s.light.stats["messages"] for s in light_seats),
                  "mb_received": round(sum(s.light.stats["bytes"] for s in light_seats) / 2**20, 1),
                  "auto_reruns_sent": sum(s.light.stats["auto_reruns_sent"] for s in light_seats)},
        "server_cpu_ms_per_session": round(extra["server_cpu_s"] * 1000 / n),  # its click, polls and result
        "max_concurrent": int(os.environ.get("TL_MAX_CONCURRENT_RUNS", "2") or 2),
        "browser_peak_rss_mb": round(peak["browser"]), "bench_peak_rss_mb": round(peak["bench"]),
        "settings": None, **extra, "cpus": os.cpu_count(),
    }
    passes = None if passes_before is None or passes_after is None else passes_after - passes_before
    return ClassResult(n, browsers, cache, submitted, completed, max(0, submitted - completed), cross, len(stuck),
                       first_point, light_first, server, max(done.values()) if len(done) == n else None,
                       max(finished) if len(finished) == n else None, peak, passes,
                       details)


@contextlib.contextmanager
def class_server(cache: bool, *, warm_s: float, ray_address: str | None = None, log=print):
    """A fresh server (its own data folder), up for `warm_s` seconds; yields (server, data_dir)."""
    data_dir = Path(tempfile.mkdtemp(prefix="tl_classroom_"))
    server = AppServer(data_dir, data_dir / "streamlit.log", env=server_env(data_dir, cache, ray_address))
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

    def server_first(res: ClassResult, q: float):
        return percentile([t["first_epoch"] for t in res.server if "first_epoch" in t], q)

    return {"sessions": on.sessions, "cache_off_over_on": {
        "first_point_median": div(percentile(off.first_point, 50), percentile(on.first_point, 50)),
        "first_point_p95": div(percentile(off.first_point, 95), percentile(on.first_point, 95)),
        "server_first_point_median": div(server_first(off, 50), server_first(on, 50)),
        "server_first_point_p95": div(server_first(off, 95), server_first(on, 95)),
        "last_done_s": div(off.last_done_s, on.last_done_s)}}


def describe(res: ClassResult) -> str:
    j = res.to_json()
    fp, sfp, lfp = j["first_point_s"], j["server_first_point_s"], j["light_first_point_s"]
    return (f"N={res.sessions} ({res.browsers} browsers) cache {'on' if res.cache else 'off'}: "
            f"{res.runs_submitted} submitted, {j['details']['runs_queued']} queued, {res.runs_completed} completed, "
            f"{res.runs_lost} lost, cross-talk {res.cross_talk}, stuck pages {res.stuck_pages}; first point: server "
            f"median {sfp['median']} s p95 {sfp['p95']} s, light {lfp['median']} / {lfp['p95']} s, browsers "
            f"{fp['median']} / {fp['p95']} s; last done {j['last_done_s']} s (server {j['server_last_finished_s']} s); "
            f"peak RSS server {j['peak_rss_mb']['server']} MB, workers {j['peak_rss_mb']['workers']} MB, browser "
            f"{j['details']['browser_peak_rss_mb']} MB; backbone forward passes {res.backbone_forward_passes}; "
            f"clicks spread {j['details']['click_spread_s']} s; "
            f"load {j['details']['load_avg_before'][0]} -> {j['details']['load_avg_after'][0]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default=",".join(map(str, DEFAULT_SESSIONS)), help="class sizes, e.g. 5,10,30")
    ap.add_argument("--light", action="store_true", help="only --browsers students get a browser, the rest are "
                    "light sessions (bench/light_client.py)")
    ap.add_argument("--browsers", type=int, default=DEFAULT_BROWSERS, help="real browsers per class with --light")
    ap.add_argument("--json", action="store_true", help="one JSON object per line (per class size and cache setting)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--no-cache", action="store_true", help="server with TL_ACTIVATION_CACHE_MB=0")
    group.add_argument("--compare-cache", action="store_true", help="each N with the cache on, then off; ratios")
    ap.add_argument("--ray-address", default=None, help="train the class's runs on this Ray cluster (HOST:6379; "
                    "TL_RUNNER=ray) instead of the server's worker processes")
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
    if args.browsers < 0:
        ap.error("--browsers is 0 or more")
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
                browsers = min(n, args.browsers) if args.light else n
                results = {}
                for cache in caches:
                    log(f"class of {n} ({browsers} browsers, {n - browsers} light), cache {'on' if cache else 'off'}:")
                    with class_server(cache, warm_s=args.warm_s, ray_address=args.ray_address,
                                      log=log) as (server, data_dir):
                        res = run_class(browser, server, data_dir, n, browsers=browsers, settings=settings,
                                        cache=cache, timeout=args.timeout, log=log)
                    res.details.update(settings=settings, runner="ray" if args.ray_address else "local")
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
