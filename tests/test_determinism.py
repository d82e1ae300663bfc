"""A run's numbers are a function of its config and seed only: the same validation curve and test accuracy
whatever thread count the process started with, in a worker process alone, and in a worker beside another run.

Real training (digits, 32 px, mobilenet_v2 from scratch, the short budget) in this process and in real spawned
worker processes.
"""

from __future__ import annotations

import pytest
import torch

from tl_core.config import TrainConfig
from tl_core.engine import training
from tl_core.records import JobState
from tl_core.runs.jobs import JobManager
from tl_core.runs.runners import make_runner
from tl_core.runs.store import RunStore

CONFIG = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", mode="scratch", image_size=32, epochs=3,
                     labels_per_class=8, val_per_class=5, test_per_class=5, budget="fixed", batch_size=16)
BESIDE = TrainConfig(**{**CONFIG.to_dict(), "mode": "finetune", "freeze_depth": 3, "seed": 7, "epochs": 6})


def _numbers(history, summary):
    """What a class reads off a run: the validation curve and the test accuracy (not the seconds it took)."""
    return [(h["epoch"], h["train_loss"], h["val_loss"], h["val_acc"]) for h in history], summary["test_acc"]


@pytest.fixture(scope="module")
def in_process():
    """The CLI's way (the run trains in this process), started with one and with two torch threads: the run sets
    its own count (TrainConfig.threads), as it does whatever OMP_NUM_THREADS said."""
    before = torch.get_num_threads()
    out = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            r = training.train(CONFIG)
            out[threads] = _numbers(r.history, r.summary)
            assert r.summary.threads == 1 and r.summary.deterministic
    finally:
        torch.set_num_threads(before)
    return out


def test_the_process_s_thread_count_does_not_change_a_run(in_process):
    assert in_process[1] == in_process[2]
    assert len(in_process[1][0]) == 3


def test_a_worker_process_alone_and_beside_another_run_give_the_same_numbers(in_process, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    manager = JobManager(store, max_concurrent=2, runner=make_runner("local", store, 2, warm=False))
    try:
        assert manager.runner.wait_ready(180)
        alone = manager.wait(manager.submit(CONFIG, owner="a"), timeout=300)
        beside_id, other_id = manager.submit(CONFIG, owner="a"), manager.submit(BESIDE, owner="b")
        beside, other = (manager.wait(j, timeout=300) for j in (beside_id, other_id))
    finally:
        manager.shutdown()
    assert [alone.state, beside.state, other.state] == [JobState.COMPLETED] * 3, (alone.error, beside.error)
    assert _numbers(alone.history, alone.summary) == in_process[1]
    assert _numbers(beside.history, beside.summary) == in_process[1]
    assert store.get_run(beside.run_id)["config"]["threads"] == 1  # the setting is stored with the run


def test_a_run_on_two_threads_is_its_own_config():
    """The thread count is part of the numerics, so it is part of the config (and a run says what it used)."""
    assert TrainConfig.from_dict({**CONFIG.to_dict(), "threads": 2}) != CONFIG
    with pytest.raises(Exception, match="threads"):
        TrainConfig(threads=0).validate()
