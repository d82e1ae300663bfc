"""ui.views' pure helpers: what the Train summary and the Compare table print."""

from __future__ import annotations

from tl_core.records import JobState
from ui import views


def test_per_class_text_says_when_classes_differ():
    assert views.per_class_text([10, 10, 10]) == "10"
    assert views.per_class_text([5, 10, 7]) == "5–10"  # a small class gives what it has
    assert views.per_class_text([]) == "0"


def test_run_table_leads_with_the_run_and_its_accuracy():
    record = {"run_id": "abc", "status": "completed", "owner": "me", "created_at": "2026-01-01T10:00:00+00:00",
              "device": "cpu", "history": [],
              "config": {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "scratch", "labels_per_class": 5},
              "summary": {"best_val_acc": 0.5, "final_val_acc": 0.4, "wall_s": 3.21, "test_acc": 0.45,
                          "health": [{"code": "one_class", "message": "90% predicted as one class",
                                      "advice": "train longer"}]}}
    df = views.record_summary_rows([record])
    assert list(df.columns)[:4] == ["run", "test acc", "val acc", "health"]  # the reported number, then its health
    row = df.iloc[0]
    assert row["k"] == 0 and row["labels/class"] == 5 and row["seconds"] == 3.2 and row["test acc"] == 0.45
    assert row["health"] == "90% predicted as one class" and row["seed"] == 0
    assert views.SHOWN_COLUMNS == list(df.columns)[:13] and "final val acc" in df.columns  # the CSV keeps it
    assert all(s.icon.startswith(":material/") for s in JobState)  # no emoji: they need an emoji font


def test_run_table_names_a_runs_recipe_beside_its_mode():
    record = {"run_id": "abc", "status": "completed", "history": [],
              "config": {"mode": "finetune", "recipe": "gradual", "freeze_depth": 0}, "summary": {}}
    assert views.record_summary_rows([record]).iloc[0]["mode"] == "finetune · gradual"
    assert "Gradual unfreezing (Howard & Ruder 2018)" in views.describe_config(record["config"])


def test_a_page_polls_a_queued_run_less_often_the_further_back_it_waits():
    assert views.poll_every(JobState.RUNNING) == views.poll_every(JobState.PREPARING) == 0.5
    assert views.poll_every(JobState.QUEUED, 1) == 1.0  # next in line: its start shows within a second
    assert views.poll_every(JobState.QUEUED, 9) == 3.0  # far back: only its place in the queue changes
