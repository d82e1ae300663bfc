"""The real browser pages of bench/bench_classroom.py, and the seat each student takes (a page or a light session).

A page gets an observer (OBSERVER_JS) that looks at it every TICK_MS: the run it shows, when its learning curve got
its first point, when its result appeared; STUCK_JS reads what a page that never showed its result shows instead.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field

from bench.light_client import LightClass, LightSession
from tl_core.runs.sessions import SessionStore

#: Headless Debian chromium on a closed network: its own background connections off (they fail there and get
#: page connections refused with them).
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}  # a classroom projector
TICK_MS = 200  # how often each page looks at itself


def chromium_path() -> str:
    """The system chromium ($TL_CHROMIUM, /usr/bin/chromium or on PATH); exits with a clear message without one."""
    path = os.environ.get("TL_CHROMIUM") or "/usr/bin/chromium"
    found = path if os.path.exists(path) else shutil.which("chromium")
    if not found:
        raise SystemExit(f"chromium not found at {path} (apt-get install -y chromium, or set TL_CHROMIUM)")
    return found


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


@dataclass
class Seat:
    """One student: a real browser page, or a light session (`page` None)."""

    owner: str
    page: object = None
    light: LightSession | None = None
    watch: dict = field(default_factory=dict)  # window.__tl, or the light session's watch, as last read
    console: list = field(default_factory=list)  # a browser page's last console lines

    @property
    def kind(self) -> str:
        return "browser" if self.page is not None else "light"

    def ended(self) -> bool:
        return bool(self.watch.get("doneAt") or self.watch.get("failedAt"))

    def heard(self, message) -> None:
        """A console line of the page (the last 20 are kept: Streamlit's frontend logs its connection there)."""
        self.console.append(f"{message.type}: {message.text[:200]}")
        del self.console[:-20]

    def shows(self) -> dict:
        """What the page shows now (for a page that never showed its result)."""
        return self.page.evaluate(STUCK_JS) if self.page is not None else self.light.view()


def open_students(browser, url: str, sessions: SessionStore, n: int, settings: dict) -> list[Seat]:
    """N fresh browser contexts, each on the Train page of its own session, Start enabled, observer installed."""
    from playwright.sync_api import expect

    seats = []
    for _ in range(n):
        owner = uuid.uuid4().hex[:16]
        sessions.update_settings(owner, settings)  # what the Data and Model pages keep for a student's choices
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(120_000)
        page = ctx.new_page()
        seat = Seat(owner, page)
        page.on("console", seat.heard)
        page.goto(f"{url}/train?s={owner}", timeout=180_000)
        expect(page.locator(".st-key-start_run").get_by_role("button", name="Start training")).to_be_enabled(
            timeout=180_000)
        page.evaluate(OBSERVER_JS, TICK_MS)
        seats.append(seat)
    return seats


def open_light(light: LightClass, sessions: SessionStore, n: int, settings: dict) -> list[Seat]:
    """N light sessions, each on the Train page of its own session with Start enabled."""
    owners = [uuid.uuid4().hex[:16] for _ in range(n)]
    for owner in owners:
        sessions.update_settings(owner, settings)
    light.open(owners)
    return [Seat(s.owner, light=s) for s in light.sessions[-n:]]


def wait_until_warm(url: str, timeout_s: float = 300.0) -> float:
    """Seconds until Home's demo button turned on: the server has warmed up (run workers ready, the demo's data
    and weights loaded), as a teacher who opened the app before the lesson sees it. A light session watches Home."""
    start = time.monotonic()
    home = LightClass(url, page="")
    try:
        home.open([uuid.uuid4().hex[:16]], key="run_demo", timeout=timeout_s)
    finally:
        home.close()
    return time.monotonic() - start


def read_seats(seats: list[Seat], light: LightClass | None) -> None:
    for s in seats:
        if s.page is not None:
            s.watch = s.page.evaluate("() => window.__tl")
    if light is not None and light.sessions:
        for s, w in zip([s for s in seats if s.light is not None], light.watches()):
            s.watch = w


