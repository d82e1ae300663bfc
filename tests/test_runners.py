"""Runs outside the server process: the `local` runner's worker processes, and what happens when things break.

Real training (digits, 32 px, mobilenet_v2) in real spawned worker processes; faults are real too: kill -9 of a
worker mid-run, a run far too big for the machine's memory, a server killed with kill -9 and started again, two
servers writing one SQLite run store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tl_core.config import TrainConfig
from tl_core.records import JobState
from tl_core.runs.jobs import JobManager
from tl_core.runs.runners import make_runner, runner_name
from tl_core.runs.store import RunStore
from runner_helpers import LONG, TINY, wait_for_steps

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """One worker, started while `__main__` is a script that fails when run: what Streamlit leaves behind after it
    ran a page or an AppTest script (it installs the script as `__main__`). The worker must not run it again."""
    script = tmp_path_factory.mktemp("main") / "page_script.py"
    script.write_text("raise SystemExit('the page script ran inside a worker')\n")
    main, page = sys.modules["__main__"], type(sys)("__main__")
    page.__file__ = str(script)
    sys.modules["__main__"] = page
    try:
        store = RunStore(tmp_path_factory.mktemp("runs") / "runs.sqlite")
        manager = JobManager(store, max_concurrent=1, runner=make_runner("local", store, 1, warm=False))
        assert manager.runner.wait_ready(120)
        assert page.__file__ == str(script)  # given back to the script once the worker started
    finally:
        sys.modules["__main__"] = main
    yield manager
    manager.shutdown()


def test_a_run_trains_in_a_worker_process_and_is_recorded(pool):
    job_id = pool.submit(TINY, owner="a")
    job = pool.wait(job_id, timeout=120)
    assert job.state == JobState.COMPLETED, job.error
    assert [e.epoch for e in job.epochs_seen] == [1, 2] and job.summary.test_acc is not None
    row = pool.store.get_run(job.run_id)
    assert row["status"] == JobState.COMPLETED and [h["epoch"] for h in row["history"]] == [1, 2]
    assert (pool.store.artifacts_dir(job.run_id, create=False) / "model.safetensors").exists() or any(
        pool.store.artifacts_dir(job.run_id, create=False).iterdir())
    assert os.getpid() not in pool.runner.worker_pids()


def test_cancel_reaches_the_worker_within_a_batch(pool):
    job_id = pool.submit(LONG, owner="a")
    wait_for_steps(pool, job_id)
    asked = time.time()
    pool.cancel(job_id)
    job = pool.wait(job_id, timeout=60)
    assert job.state == JobState.CANCELLED and time.time() - asked < 10
    assert pool.store.get_run(job.run_id)["status"] == JobState.CANCELLED


def test_a_killed_worker_fails_its_run_in_one_line_and_is_replaced(pool):
    job_id = pool.submit(LONG, owner="a")
    wait_for_steps(pool, job_id)
    victim = pool.runner.busy_pid(job_id)
    os.kill(victim, signal.SIGKILL)
    job = pool.wait(job_id, timeout=60)
    assert job.state == JobState.FAILED and "killed by SIGKILL" in job.error and "\n" not in job.error
    row = pool.store.get_run(job.run_id)
    assert row["status"] == JobState.FAILED and "SIGKILL" in row["error"]
    after = pool.wait(pool.submit(TINY, owner="a"), timeout=180)  # on the replacement worker
    assert after.state == JobState.COMPLETED and victim not in pool.runner.worker_pids()


def test_a_run_far_too_big_for_memory_gets_advice_and_the_worker_lives_on(pool):
    pids = pool.runner.worker_pids()
    huge = TrainConfig(**{**TINY.to_dict(), "mode": "finetune", "freeze_depth": 0, "image_size": 1024,
                          "batch_size": 4096})
    job = pool.wait(pool.submit(huge, owner="a"), timeout=120)
    assert job.state == JobState.FAILED
    assert "GB of memory" in job.error and "smaller batch size or image size" in job.error
    assert pool.runner.worker_pids() == pids  # refused before allocating: the same worker takes the next run
    assert pool.wait(pool.submit(TINY, owner="a"), timeout=120).state == JobState.COMPLETED


SERVER = textwrap.dedent("""
    import sys, time
    from tl_core.config import TrainConfig
    from tl_core.runs.jobs import JobManager
    from tl_core.runs.store import RunStore
    store = RunStore(sys.argv[1])
    manager = JobManager(store, max_concurrent=1, runner={runner!r})
    config = TrainConfig.from_dict({config!r})
    ids = [manager.submit(config, owner=sys.argv[2]) for _ in range({runs})]
    for i in ids:
        job = manager.wait(i, timeout=300)
        print(job.state.value, job.run_id, flush=True)
    if {hang}:
        time.sleep(600)
    manager.shutdown()
""")


def _server(path, owner, *, runner="local", config=TINY, runs=1, hang=False):
    code = SERVER.format(runner=runner, config=config.to_dict(), runs=runs, hang=hang)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, str(path), owner], stdout=subprocess.PIPE, text=True, env=env)


def test_a_server_killed_mid_run_leaves_it_marked_interrupted_and_finished_runs_intact(tmp_path):
    path = tmp_path / "runs.sqlite"
    first = _server(path, "s1", runs=1, hang=True)
    done_line = first.stdout.readline().split()
    assert done_line[0] == "completed"
    first.kill()
    first.wait()
    second = _server(path, "s2", config=LONG)  # a second server, the same store: its long run starts
    store = RunStore(path)
    deadline = time.time() + 120
    while not any(r["status"] == JobState.RUNNING for r in store.list_runs(owner="s2")) and time.time() < deadline:
        time.sleep(0.2)
    second.send_signal(signal.SIGKILL)  # kill -9 of the server mid-run: its worker stops itself
    second.wait()
    time.sleep(1.5)
    restarted = RunStore(path)  # what a restarted server does first
    rows = {r["owner"]: r for r in restarted.list_runs()}
    assert rows["s1"]["status"] == JobState.COMPLETED and rows["s1"]["summary"].test_acc is not None
    assert rows["s2"]["status"] == JobState.FAILED and "interrupted" in rows["s2"]["error"]


def test_two_servers_write_one_run_store(tmp_path):
    path = tmp_path / "runs.sqlite"
    servers = [_server(path, f"s{i}", runner="thread", runs=2) for i in range(2)]
    lines = [s.communicate(timeout=300)[0].split("\n") for s in servers]
    assert all(s.returncode == 0 for s in servers)
    rows = RunStore(path).list_runs()
    assert len(rows) == 4 and {r["status"] for r in rows} == {JobState.COMPLETED}
    assert sorted(r["owner"] for r in rows) == ["s0", "s0", "s1", "s1"]
    assert sum(line.startswith("completed") for out in lines for line in out) == 4
    assert all(len(r["history"]) == 2 for r in rows)


def test_an_unknown_runner_is_a_clear_error(monkeypatch):
    from tl_core.errors import ConfigError

    monkeypatch.setenv("TL_RUNNER", "slurm")
    with pytest.raises(ConfigError, match="unknown runner 'slurm'.*local, thread, ray"):
        runner_name()
    assert json.dumps(runner_name("LOCAL")) == '"local"'
