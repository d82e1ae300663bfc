"""The `ray` runner on a real Ray cluster: a head and one worker node started with Ray's own CLI, as an
operator would (`ray start --head`, `ray start --address`), shared by the module because Ray starts slowly.

Real training (digits, 32 px, mobilenet_v2) in Ray actors; real faults: a cancel mid-run, and kill -9 of the
Ray worker process that trains a run. The cluster is stopped by killing the process groups its two `ray start`
commands made (not `ray stop`, which would stop every Ray process of this user on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tl_core.errors import ConfigError
from tl_core.events import EpochMetrics, RunFinished, RunStarted, StepProgress
from tl_core.records import JobState
from tl_core.runs.jobs import JobManager
from tl_core.runs.runners import make_runner
from tl_core.runs.store import RunStore
from runner_helpers import LONG, TINY, wait_for_steps

pytestmark = pytest.mark.ray
NO_RAY = "Ray is optional and not installed here: `make setup-ray` installs it (requirements-ray.txt)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(args: list[str], temp: Path, groups: list[int]) -> None:
    """`ray start ...` in a session of its own: every daemon it leaves behind is in that process group."""
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray_cli), "start", *args, "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats",
                             f"--temp-dir={temp}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    groups.append(proc.pid)
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")


def _stop(groups: list[int], temp: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        time.sleep(1.0)
    for proc in Path("/proc").iterdir():  # anything of this cluster that left the groups: it names our temp dir
        try:
            if proc.name.isdigit() and str(temp).encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    """The address of a two-node cluster on this machine (one CPU each: two runs at once at most)."""
    pytest.importorskip("ray", reason=NO_RAY)
    temp = Path(tempfile.mkdtemp(prefix="tlray", dir="/tmp"))  # short: Ray's socket paths must stay short
    groups: list[int] = []
    port = _free_port()
    # Token authentication off, said explicitly, for the nodes and this process: Ray turns it on by itself when it
    # finds a token in ~/.ray/auth_token, and a token another cluster left there locked the test out of its own.
    # (A token of the test's own, RAY_AUTH_TOKEN, started the nodes but this process could not connect with it.)
    auth = {"RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    try:
        _ray_start(["--head", f"--port={port}", f"--ray-client-server-port={_free_port()}",
                    "--include-dashboard=false"], temp, groups)
        _ray_start([f"--address=127.0.0.1:{port}"], temp, groups)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(groups, temp)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def manager(cluster, tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs") / "runs.sqlite")
    manager = JobManager(store, max_concurrent=1, runner=make_runner("ray", store, 1, address=cluster))
    yield manager
    manager.shutdown()



def test_a_run_trains_on_the_cluster_streams_its_events_and_predicts_like_a_local_one(manager):
    from tl_core.runs.inspection import open_run, predictions

    seen = []
    runner = manager.runner
    job_id = manager.submit(TINY, owner="a")
    while not (snap := manager.snapshot(job_id)).done:  # live: what the page polls, while the run trains
        kinds = ([RunStarted] if snap.started else []) + ([StepProgress] if snap.last_step else []) + (
            [EpochMetrics] * len(snap.epochs_seen))
        seen.append((kinds, snap.finished is not None))
        time.sleep(0.02)
    job = manager.wait(job_id)
    assert job.state == JobState.COMPLETED, job.error
    assert any(EpochMetrics in kinds and not finished for kinds, finished in seen), "no epoch seen before the end"
    assert [e.epoch for e in job.epochs_seen] == [1, 2] and isinstance(job.finished, RunFinished)
    assert job.last_step.global_step == job.total_steps and job.summary.test_acc is not None
    row = manager.store.get_run(job.run_id)
    assert row["status"] == JobState.COMPLETED and [h["epoch"] for h in row["history"]] == [1, 2]
    assert row["summary"].test_acc == job.summary.test_acc
    # the weights trained on the Ray worker, reloaded from the app's store by the Predict page's code
    folder = manager.store.artifacts_dir(job.run_id, create=False)
    assert (folder / "model.safetensors").stat().st_size > 100_000 and (folder / "meta.json").exists()
    test = predictions(open_run(manager.store, job.run_id, split="test"))
    assert test.accuracy == pytest.approx(job.summary.test_acc, abs=0.05)
    assert runner.name == "ray" and runner.busy_pid(job_id) is None


def test_cancel_reaches_the_ray_worker_within_seconds(manager):
    job_id = manager.submit(LONG, owner="a")
    wait_for_steps(manager, job_id)
    asked = time.time()
    manager.cancel(job_id)
    job = manager.wait(job_id, timeout=60)
    assert job.state == JobState.CANCELLED and time.time() - asked < 5
    assert manager.store.get_run(job.run_id)["status"] == JobState.CANCELLED


def test_a_killed_ray_worker_fails_its_run_in_one_line_and_the_next_run_completes(manager):
    job_id = manager.submit(LONG, owner="a")
    wait_for_steps(manager, job_id)
    victim = manager.runner.busy_pid(job_id)
    assert victim and victim != os.getpid()
    os.kill(victim, signal.SIGKILL)
    job = manager.wait(job_id, timeout=60)
    assert job.state == JobState.FAILED and "Ray worker process training this run died" in job.error
    assert "\n" not in job.error
    row = manager.store.get_run(job.run_id)
    assert row["status"] == JobState.FAILED and row["error"] == job.error
    after = manager.wait(manager.submit(TINY, owner="a"), timeout=180)  # the app kept serving
    assert after.state == JobState.COMPLETED, after.error
    assert manager.store.get_run(after.run_id)["status"] == JobState.COMPLETED


def test_the_ray_runner_needs_an_address_and_says_how_to_give_one(monkeypatch, tmp_path):
    pytest.importorskip("ray", reason=NO_RAY)
    for var in ("TL_RAY_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="needs a cluster: set TL_RAY_ADDRESS"):
        make_runner("ray", RunStore(tmp_path / "runs.sqlite"), 1)


def test_without_ray_installed_choosing_it_says_make_setup_ray(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    with pytest.raises(ConfigError, match=r"needs Ray, which is not installed: run `make setup-ray`"):
        make_runner("ray", RunStore(tmp_path / "runs.sqlite"), 1)


def test_the_cli_trains_on_the_cluster_and_without_an_address_says_so_in_one_line(manager, monkeypatch, capsys,
                                                                                   tmp_path):
    """`python -m tl_core train --runner ray`, in this process: it reuses the module's Ray connection (a new
    process would import torch and start Ray's client again: half a minute on a busy machine)."""
    from tl_core.cli import main

    monkeypatch.delenv("TL_RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["train", "--runner", "ray", "--data", "builtin:digits", "--backbone", "mobilenet_v2", "--mode", "frozen",
            "--image-size", "32", "--epochs", "1", "--labels-per-class", "5", "--val-per-class", "5",
            "--test-per-class", "5", "--store", str(tmp_path / "runs.sqlite"), "--json", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "TL_RAY_ADDRESS" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("TL_RAY_ADDRESS", manager.runner.address)
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    row = RunStore(tmp_path / "runs.sqlite").get_run(out["run_id"])
    assert row["status"] == JobState.COMPLETED and out["test_acc"] == row["summary"].test_acc
    assert (tmp_path / "artifacts" / out["run_id"] / "model.safetensors").exists()
