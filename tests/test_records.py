"""The run summary is declared once: stored, reloaded and read by name without a misspelt key reading None."""

import json

import pytest

from tl_core.records import JobState, RunSummary
from tl_core.runs.store import RunStore


def test_a_misspelt_field_raises_instead_of_reading_none():
    s = RunSummary(test_acc=0.8)
    assert s["test_acc"] == s.get("test_acc") == s.test_acc == 0.8
    assert s.get("ood_acc", "n/a") == "n/a"  # declared but unset: the default, as with a dict
    with pytest.raises(KeyError, match="tset_acc"):
        s.get("tset_acc")
    with pytest.raises(KeyError):
        s["tset_acc"] = 1.0


def test_the_store_keeps_it_and_gives_it_back_typed(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    store.create_run("r1", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"}, owner="o")
    store.finish("r1", JobState.COMPLETED, RunSummary(test_acc=0.5, classes=["a", "b"], health=[]))
    run = store.get_run("r1")
    assert isinstance(run["summary"], RunSummary) and run["summary"].test_acc == 0.5
    assert run["status"] == "completed" and run["status"] is JobState.COMPLETED
    assert json.loads(json.dumps(run, default=RunSummary.to_dict))["summary"]["classes"] == ["a", "b"]


def test_rows_written_by_other_versions_load(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    store.create_run("old", {"data": "d", "backbone": "b", "mode": "frozen"}, owner="o")
    store.finish("old", "completed", {"best_val_acc": 0.7, "a_key_from_the_future": 1})
    summary = store.get_run("old")["summary"]
    assert summary.best_val_acc == 0.7 and summary.test_acc is None


def test_job_states_know_whether_they_are_done():
    assert [s for s in JobState if s.done] == [JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED]
    assert JobState("running").active and f"{JobState.RUNNING}" == "running"
