"""The app as a separate server process: start it on a free port with its own data folder, wait until it answers,
stop it.

The browser tests (tests/e2e/conftest.py) and the benchmarks (bench/) both meet the app the way a student does,
through a real server; this is the launcher's own knowledge of how that server starts, kept beside the launcher
so that neither of them has to borrow it from the other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: As `make run`: the launcher (ui/launch.py).
LAUNCHER = ("-m", "ui.launch")
#: Streamlit alone, without the launcher.
PLAIN = ("-m", "streamlit", "run", "app.py")
STARTUP_TIMEOUT_S = 240.0


def free_port() -> int:
    """A TCP port nothing listens on at this moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(url: str) -> bool:
    """Whether the server at `url` answers its health check with ok."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read().decode().strip() == "ok"
    except OSError:
        return False


class AppServer:
    """The app in a subprocess (its own process group) on 127.0.0.1; its output goes to `log_path`.

    `env` adds to this process's environment; TL_DATA_DIR is always `data_dir`, so a server never touches
    another's runs.
    """

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None, port: int | None = None,
                 command: tuple[str, ...] = LAUNCHER):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        full_env = dict(os.environ, TOKENIZERS_PARALLELISM="false", **(env or {}), TL_DATA_DIR=str(data_dir))
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime, closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, *command, "--server.headless=true", f"--server.port={self.port}",
             "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> float:
        """Seconds from the process start until /_stcore/health answered ok; an error with the log's tail if the
        process exits or does not answer within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{self.log_tail()}")
            if health_ok(self.url):
                return time.perf_counter() - self.started
            time.sleep(0.05)
        raise TimeoutError(f"the app did not answer within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (the app cancels its runs at exit), then SIGKILL if it has not exited within 20 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
