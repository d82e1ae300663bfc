"""The JobManager: runs on worker threads, one after another when asked, cancellable while they wait.

Real training on a tiny built-in subset (digits, 32 px, mobilenet_v2 frozen): seconds on two CPU cores.
"""

from __future__ import annotations

import time

import pytest

from tl_core.runs import demo
from tl_core.config import TrainConfig
from tl_core.runs.jobs import JobManager

TINY = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", mode="frozen", image_size=32, epochs=2,
                   labels_per_class=5, val_per_class=5)


@pytest.fixture
def manager(store):
    manager = JobManager(store, max_concurrent=2)
    yield manager
    manager.shutdown()


def test_a_run_after_another_waits_for_it_to_end(manager):
    first = manager.submit(TINY, owner="a", label="demo:frozen")
    second = manager.submit(TINY, owner="a", label="demo:finetune", after=first)
    while not manager.snapshot(first).done:  # two free slots, yet the second one waits
        snap = manager.snapshot(second)
        assert snap.state == "queued" and snap.run_id is None and snap.waiting_for == "demo:frozen"
        time.sleep(0.01)
    assert manager.wait(second, timeout=120).state == "completed"
    assert manager.snapshot(first).state == "completed" and manager.snapshot(second).waiting_for == ""


def test_a_waiting_run_can_be_cancelled_and_never_starts(manager):
    long_run = manager.submit(TrainConfig(**{**TINY.to_dict(), "mode": "scratch", "epochs": 500}), owner="a")
    waiting = manager.submit(TINY, owner="a", after=long_run)
    manager.cancel(waiting)
    assert manager.wait(waiting, timeout=30).state == "cancelled"
    assert manager.snapshot(waiting).run_id is None
    assert not manager.snapshot(long_run).done  # cancelling the follower leaves the first run alone
    manager.cancel(long_run)
    assert manager.wait(long_run, timeout=60).state == "cancelled"


def test_waiting_for_an_unknown_job_is_refused(manager):
    with pytest.raises(KeyError, match="no job nope"):
        manager.submit(TINY, owner="a", after="nope")


def test_the_demo_runs_feature_extraction_over_seeds_and_trains_every_arm_to_convergence():
    configs = demo.classroom_demo_configs()
    assert [(c.mode, c.seed) for c in configs] == [("frozen", 0), ("scratch", 0), ("finetune", 0), ("frozen", 1),
                                                    ("frozen", 2)]
    assert {c.labels_per_class for c in configs} == {25}
    # the fair budget: the modes' defaults, and for every network that trains that is "converge"
    assert {c.budget for c in configs} == {None}
    assert {c.effective_budget for c in configs if c.mode != "frozen"} == {"converge"}
    assert {c.freeze_depth for c in configs if c.mode == "finetune"} == {demo.DEMO_FINETUNE_DEPTH}


def test_the_demo_starts_its_frozen_run_and_the_longest_run_first(manager, store):
    configs = demo.classroom_demo_configs(data="builtin:digits", image_size=32, epochs=1, labels_per_class=5,
                                          val_per_class=5, test_per_class=5, seeds=1, budget="fixed")
    ids = demo.submit_demo(manager, "teacher", configs)
    jobs = [manager.snapshot(i) for i in ids]
    assert [j.config.mode for j in jobs] == ["frozen", "scratch", "finetune"]
    assert [j.after for j in jobs] == [None, None, None]  # nothing waits: two runs train side by side at once
    done = [manager.wait(i, timeout=180) for i in ids]
    assert [j.state for j in done] == ["completed"] * 3
    runs = [store.get_run(j.run_id) for j in done]
    assert runs[1]["created_at"] <= runs[2]["created_at"]  # the queue keeps the order: the longest run goes first


def test_state_of_says_what_a_live_page_polls_for_without_copying_the_job(manager):
    long_run = manager.submit(TrainConfig(**{**TINY.to_dict(), "mode": "scratch", "epochs": 500}), owner="a")
    waiting = manager.submit(TINY, owner="b", after=long_run)
    assert manager.state_of("nope") is None
    assert manager.state_of(waiting) == ("queued", 1)
    snap = manager.snapshot(waiting)
    assert (snap.state, snap.queue_position) == manager.state_of(waiting)
    manager.cancel(long_run)
    assert manager.wait(waiting, timeout=120).state == "completed"
    assert manager.state_of(waiting) == ("completed", 0)


def test_a_job_and_its_stored_run_keep_when_it_was_submitted_started_first_scored_and_finished(manager, store):
    job_id = manager.submit(TINY, owner="a")
    job = manager.wait(job_id, timeout=120)
    assert job.state == "completed"
    assert job.submitted_at <= job.started_at <= job.first_epoch_at <= job.ended_at
    times = store.get_run(job.run_id)["times"]
    assert times["submitted"] == job.submitted_at  # the manager's, written once the run's row existed
    # the store's moments are when the run recorded them; the manager hears of each just after
    assert times["submitted"] <= times["started"] <= times["first_epoch"] <= times["finished"]
    assert times["started"] <= job.started_at and times["first_epoch"] <= job.first_epoch_at


def test_a_job_cancelled_in_the_queue_has_ended_there(manager):
    long_run = manager.submit(TrainConfig(**{**TINY.to_dict(), "mode": "scratch", "epochs": 500}), owner="a")
    waiting = manager.submit(TINY, owner="a", after=long_run)
    manager.cancel(waiting)
    snap = manager.wait(waiting, timeout=30)
    assert snap.started_at is None and snap.first_epoch_at is None and snap.ended_at >= snap.submitted_at
    manager.cancel(long_run)
    manager.wait(long_run, timeout=60)
