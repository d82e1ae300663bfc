"""Fixtures of the real-browser tests: one real Streamlit server, one headless Debian chromium.

Nothing is installed here. The server is `python -m ui.launch` (as `make run`: `streamlit run app.py` after
a warm-up) on a free port with its own
TL_DATA_DIR and a fast classroom demo (TL_DEMO_* variables read by the Home page); the browser is the
system chromium (`apt-get install -y chromium`; CI's `.ci/run` installs it). Without chromium the tests
skip on a developer machine and fail under CI (env CI set).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TL_CHROMIUM") or "/usr/bin/chromium"
# --disable-background-networking & co.: on a closed network chromium's own background connections
# fail and get many page connections refused with them.
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: The fast demo of these tests (the Home page reads these).
#: The tests' small demo: every arm 3 epochs (TL_DEMO_BUDGET=fixed), the smallest whose scratch run is healthy.
SERVER_ENV = {"TL_DEMO_EPOCHS": "3", "TL_DEMO_LABELS_PER_CLASS": "10", "TL_DEMO_BUDGET": "fixed"}
VIEWPORT = {"width": 1280, "height": 800}  # a classroom projector
STARTUP_TIMEOUT_S = 240  # the launcher warms up (imports, the demo) while the run workers start beside it
EXPECT_TIMEOUT_MS = 20_000  # a loaded 2-core machine trains, serves and renders at once


def pytest_configure(config):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def chromium_path() -> str | None:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    return shutil.which("chromium")


def require_chromium() -> str:
    path = chromium_path()
    if path:
        return path
    reason = f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read().decode().strip() == "ok"
    except OSError:
        return False


class Server:
    """The app (`python -m ui.launch`) in a subprocess; `url` once /_stcore/health answers ok."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        full_env = dict(os.environ, TL_DATA_DIR=str(data_dir), TOKENIZERS_PARALLELISM="false",
                        **{"TL_RUNNER": "local",  # and its own activation cache (the tests' one is the test process's)
                           "TL_ACTIVATION_CACHE_DIR": str(Path(data_dir) / "activation-cache"), **(env or {})})
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime, closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ui.launch", "--server.headless=true",  # as `make run`: warm before it listens
             f"--server.port={self.port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        """Seconds from the process start until /_stcore/health answered ok."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            if health_ok(self.url):
                return time.perf_counter() - self.started
            time.sleep(0.05)
        raise TimeoutError(f"streamlit not healthy after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the app cancels its runs at exit
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The real app on a free port, with its own data folder; yields the base URL."""
    data_dir = tmp_path_factory.mktemp("tl_e2e_data")
    server = Server(data_dir, data_dir / "streamlit.log", env=SERVER_ENV)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_url(app_server) -> str:
    return app_server.url


@pytest.fixture(scope="session")
def browser():
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_context(browser):
    """A factory of fresh browser contexts (one per student); all closed after the test."""
    contexts = []

    def make():
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture(scope="session")
def shared() -> dict:
    """What one test leaves for the next (the trained run, its session), so later tests need not retrain."""
    return {}
