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


def _draw_result(findings) -> None:
    """An AppTest script: one finished run's result, with these health findings (None: a run stored before the
    check existed)."""
    from ui import views as shown

    summary = {"test_acc": 0.9, "best_val_acc": 0.9, "n_test": 4, "confusion_matrix": [[2, 0], [0, 2]],
               "classes": ["a", "b"], "wall_s": 1.0}
    if findings is not None:
        summary["health"] = findings
    shown.render_result({"run_id": "abc", "status": "completed", "config": {"mode": "frozen"}, "summary": summary},
                        key="t")


def _result_texts(findings) -> tuple[list[str], list[str]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_draw_result, args=(findings,), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return [c.value for c in at.caption], [w.value for w in at.warning]


def test_a_healthy_run_says_so_in_one_line():
    captions, warnings = _result_texts([])
    assert views.HEALTHY_TEXT in captions and not warnings
    assert views.HEALTHY_TEXT.startswith("Health: ok")


def test_an_unhealthy_run_shows_its_finding_and_no_ok_line():
    finding = {"code": "one_class", "message": "90% predicted as one class", "advice": "train longer"}
    captions, warnings = _result_texts([finding])
    assert views.HEALTHY_TEXT not in captions
    assert any("90% predicted as one class" in w for w in warnings)


def test_a_run_stored_before_the_health_check_has_no_health_line():
    captions, _ = _result_texts(None)
    assert views.HEALTHY_TEXT not in captions


def test_a_capped_split_says_so_under_its_input():
    from ui import effective_split

    assert effective_split.capped_note(20, [10, 10, 10]) == "capped at 10 by the data"
    assert effective_split.capped_note(20, [20, 7, 20]) == "capped at 7–20 by the data"
    assert effective_split.capped_note(10, [10, 10]) == ""  # as asked: nothing to say
    assert effective_split.capped_note(None, [50, 50]) == "all: 50 per class"
    assert effective_split.capped_note(5, []) == ""


def test_a_runs_split_is_named_by_what_it_was_scored_on():
    from ui import effective_split

    def run(n_val, n_test, val=20, test=50):
        return {"config": {"val_per_class": val, "test_per_class": test},
                "summary": {"classes": ["a", "b", "c"], "n_val": n_val, "n_test": n_test}}

    assert effective_split.run_split(run(30, 30)) == ("10", "10")
    assert effective_split.split_words([run(30, 30)]) == ("10 validation (asked 20, capped by the data) and 10 test "
                                                         "(asked 50, capped by the data) items per class")
    assert effective_split.split_words([run(60, 150)]) == "20 validation and 50 test items per class"
    assert effective_split.split_words([run(60, 150), run(60, 150)]) == "20 validation and 50 test items per class"
    assert effective_split.mean_per_class(29, 3) == "≈9.7"
    assert effective_split.split_words([{"config": {}, "summary": {}}]) == ""  # nothing recorded: nothing said


def test_counts_take_the_plural_only_when_they_need_it():
    from ui.wording import count

    assert count(1, "image") == "1 image"
    assert count(2, "image") == "2 images" and count(0, "image") == "0 images"
    assert count(1, "class", "classes") == "1 class" and count(3, "class", "classes") == "3 classes"
    assert count(1797, "image") == "1,797 images"


def test_data_sets_are_named_as_a_class_knows_them():
    from ui.wording import data_label

    assert data_label("upload:digits_upload.zip@eb9045a1") == "your upload digits_upload.zip"
    assert data_label("upload:my@file.csv@eb9045a1") == "your upload my@file.csv"
    assert data_label("builtin:digits") == "digits"
    assert data_label(None) == "?" and data_label("") == "?"
    assert "upload:" not in views.describe_config({"data": "upload:pets.zip@1a2b3c4d", "mode": "frozen"})


def test_an_empty_table_cell_reads_as_an_en_dash():
    import pandas as pd
    import streamlit as st

    from ui.table_cells import EMPTY, cell_text, dash_missing, text_width

    assert EMPTY == "\u2013"
    assert cell_text(None) == cell_text(float("nan")) == cell_text(pd.NA) == cell_text("") == EMPTY
    assert cell_text(42.54, "%.1f%%") == "42.5%" and cell_text(3) == "3"
    table = pd.DataFrame({"acc": [42.5, None], "k": pd.Series([3, None], dtype="Int64"),
                          "labels": pd.Series([None, 5], dtype="Int64"), "name": ["a", "b"]})
    config = {"acc": st.column_config.NumberColumn("test acc", format="%.1f%%", width=70),
              "k": st.column_config.NumberColumn(width=35)}
    shown, columns = dash_missing(table, config, empty={"labels": "all"})
    assert list(shown["acc"]) == ["42.5%", EMPTY] and list(shown["k"]) == ["3", EMPTY]
    assert list(shown["labels"]) == ["all", "5"] and list(shown["name"]) == ["a", "b"]  # complete: untouched
    assert columns["acc"]["type_config"] == {"type": "text"} and columns["acc"]["label"] == "test acc"
    assert columns["acc"]["width"] == 70 and columns["acc"]["alignment"] == "right"
    assert "None" not in shown.to_string()
    assert text_width(["your upload digits_upload.zip"]) >= 7 * len("your upload digits_upload.zip")
    assert text_width(["a"], least=80) == 80


def test_a_run_is_labelled_with_the_epochs_and_depth_its_plan_trains():
    """A from-scratch run on the converge budget asked for 10 epochs trains 100: every label says 100."""
    from tl_core.config import TrainConfig
    from tl_core.engine.plan import RunPlan
    from tl_core.inputs import data
    import tl_core
    from ui import views

    config = TrainConfig(data="builtin:digits", mode="scratch", labels_per_class=10, image_size=32, epochs=10)
    plan = tl_core.plan_for(config, data.load_dataset("builtin:digits"))
    assert (plan.epochs, plan.steps_per_epoch) == (100, 4)  # 100 items: 4 steps an epoch, 400 steps
    line = views.describe_config(config.to_dict(), plan)
    assert "100 epochs" in line and "10 epochs" not in line
    assert views.describe_config(config.to_dict(), plan.to_dict()) == line  # a stored plan reads the same
    tuned = TrainConfig(data="builtin:digits", mode="finetune", freeze_depth=5, labels_per_class=10, image_size=32)
    assert "Fine-tune (k=5)" in views.describe_config(tuned.to_dict(), tl_core.plan_for(tuned, data.load_dataset("builtin:digits")))
    assert isinstance(RunPlan.from_dict(plan.to_dict()), RunPlan)


def test_a_polling_fragment_repeats_its_poll_timer_on_each_of_its_own_runs(monkeypatch):
    """views.keep_polling: the timer a lost full run would have set comes back with the fragment's next poll."""
    import streamlit.runtime.scriptrunner as scriptrunner

    class Ctx:
        def __init__(self, fragments):
            self.fragment_ids_this_run, self.sent = fragments, []

        def enqueue(self, msg):
            self.sent.append(msg)

    for fragments, expected in (([], 0), (None, 0), (["f1", "f2"], 0), (["f1"], 1)):
        ctx = Ctx(fragments)
        monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda ctx=ctx: ctx)
        views.keep_polling(0.5)
        assert len(ctx.sent) == expected, fragments  # a full run sends it itself; two fragments: whose is it?
    assert (ctx.sent[0].auto_rerun.fragment_id, ctx.sent[0].auto_rerun.interval) == ("f1", 0.5)
