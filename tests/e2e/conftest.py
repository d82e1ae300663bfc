"""Fixtures of the real-browser tests: one real Streamlit server, one headless Debian chromium.

Nothing is installed here. The server is `python -m ui.launch` (as `make run`; ui/server_process.py starts it)
on a free port with its own TL_DATA_DIR and a fast classroom demo (TL_DEMO_* variables read by the Home page);
it answers at once and warms up in the background (Home's demo button turns on when it is warm). The browser is
the system chromium (`apt-get install -y chromium`; CI's `.ci/run` installs it). Without chromium the tests
skip on a developer machine and fail under CI (env CI set).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ui.server_process import AppServer

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


def browser_test_env(data_dir: Path) -> dict[str, str]:
    """The tests' server: worker processes on this machine, and an activation cache of its own (the tests' one
    is the test process's)."""
    return {"TL_RUNNER": "local", "TL_ACTIVATION_CACHE_DIR": str(Path(data_dir) / "activation-cache")}


class Server(AppServer):
    """The app (`python -m ui.launch`) as the browser tests start it; `url` once /_stcore/health answers ok."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None, port: int | None = None):
        super().__init__(data_dir, log_path, env={**browser_test_env(data_dir), **(env or {})}, port=port)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The real app on a free port, with its own data folder; yields the base URL."""
    data_dir = tmp_path_factory.mktemp("tl_e2e_data")
    with Server(data_dir, data_dir / "streamlit.log", env=SERVER_ENV) as server:
        server.wait_healthy()
        yield server


@pytest.fixture(scope="session")
def app_url(app_server) -> str:
    return app_server.url


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system chromium's path (skips, or fails under CI, without one)."""
    return require_chromium()


@pytest.fixture(scope="session")
def browser(chromium):
    path = chromium
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
