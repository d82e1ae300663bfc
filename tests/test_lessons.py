"""Guided lessons: the files and their schema, the class on disk, the class's answer and its charts (pure), and one
student's way through the Lesson page (AppTest, real training on tiny settings)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tl_core import lessons
from tl_core.lessons import NEVER, TIE, LessonError
from tl_core.runs import lesson_results as results
from tl_core.runs.classroom import ALPHABET, CODE_LENGTH, Classroom, Student, StudentRun, run_label, sync_runs

GOOD = """
id = "tiny"
title = "A tiny lesson"
setting = "Digits at 32 px."
question = "Which wins?"
protocol = "Both arms on your seed."
[prediction]
kind = "choice"
prompt = "Pick one"
tie_points = 2
options = [{ name = "a", label = "Arm A", arm = "a" }, { name = "b", label = "Arm B", arm = "b" }]
[run]
base = { data = "builtin:digits", backbone = "mobilenet_v2", mode = "frozen", image_size = 32 }
[[run.arms]]
name = "a"
label = "Arm A"
[[run.arms]]
name = "b"
label = "Arm B"
pretrained = false
[reveal]
why = "Because."
"""


def write(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def tiny(tmp_path, text=GOOD):
    return lessons.read_lesson(write(tmp_path, text))


# ---- the built-in lessons ----------------------------------------------------------------------------------------
def test_the_built_in_lessons_load_and_cover_every_kind_of_prediction():
    found = lessons.load_lessons([lessons.LESSONS_DIR])
    assert len(found) >= 4
    assert len({x.id for x in found}) == len(found)
    assert {x.prediction.kind for x in found} == set(lessons.KINDS)
    assert any(x.vary == "seed" for x in found) and any(x.vary == "labels_per_class" for x in found)
    for lesson in found:
        assert [s["step"] for s in lesson.steps()] == list(lessons.STEPS)
        for index in range(4):
            for arm, config in lesson.configs(index):
                config.validate()
                assert config.seed >= 0 and arm.name in {a.name for a in lesson.arms}


def test_the_cli_lists_the_lessons_with_their_steps(capsys):
    from tl_core.cli import main

    assert main(["lessons", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    ids = [x["id"] for x in listed]
    assert {"pretraining", "when-it-stops", "freeze-depth", "source-domain"} <= set(ids)
    pre = listed[ids.index("pretraining")]
    run = next(s for s in pre["steps"] if s["step"] == "run")
    assert {r["arm"] for r in run["runs"]} == {"imagenet", "random"}
    assert all(r["config"]["mode"] == "frozen" for r in run["runs"])
    assert main(["lessons"]) == 0
    assert "Does pretraining help?" in capsys.readouterr().out


def test_a_bad_lesson_file_fails_the_cli_with_its_file_and_key(tmp_path, monkeypatch, capsys):
    from tl_core.cli import main

    write(tmp_path, GOOD.replace('kind = "choice"', 'kind = "vote"'), "broken.toml")
    monkeypatch.setenv(lessons.ENV_DIR, str(tmp_path))
    assert main(["lessons"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "broken.toml" in err and "prediction.kind" in err and "vote" in err
    assert len(err.splitlines()) == 1


# ---- the schema --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, words", [
    (('question = "Which wins?"\n', ""), ["question", "missing"]),
    (('kind = "choice"', 'kind = "vote"'), ["prediction.kind", "'vote'", "choice, best, gap, meet"]),
    (('image_size = 32', 'image_sise = 32'), ["run.base", "image_sise"]),
    (('arm = "b" }', 'arm = "c" }'), ["prediction.options[1].arm", "'c' is not an arm"]),
    (('mode = "frozen"', 'mode = "frozn"'), ["run.arms (a)", "unknown mode 'frozn'"]),
    (('pretrained = false', 'pretrained = false\nseed = 3'), ["run.arms[1].seed", "set by the class"]),
    (('name = "b"\nlabel', 'name = "a"\nlabel'), ["run.arms", "two arms share a name: a"]),
    (('[run]', '[run]\nvary = "epochs"'), ["run.vary", "'epochs' cannot vary"]),
    (('[run]', '[run]\nvary = "labels_per_class"\nvalues = [10, 5]'), ["run.values", "must increase"]),
    (('[run]', '[run]\nvalues = [5, 10]'), ["run.values", "only with vary"]),
    (('tie_points = 2', 'tie_points = -1'), ["prediction.tie_points"]),
    (('title = "A tiny lesson"', 'title = "A tiny lesson'), ["not valid TOML"]),
    (('id = "tiny"', 'id = "Tiny Lesson"'), ["id", "lower-case"]),
    (('[reveal]\nwhy = "Because."', ''), ["[reveal]", "missing"]),
])
def test_a_bad_lesson_says_which_file_and_key(tmp_path, change, words):
    text = GOOD.replace(*change)
    assert text != GOOD, change
    with pytest.raises(LessonError) as err:
        tiny(tmp_path, text)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "tiny.toml") + ": "), message
    for word in words:
        assert word in message, message


def test_kinds_that_need_values_say_so(tmp_path):
    text = GOOD.replace('kind = "choice"', 'kind = "meet"\narms = ["a", "b"]')
    with pytest.raises(LessonError, match="set run.vary and run.values"):
        tiny(tmp_path, text)


def test_json_lessons_read_too_and_two_files_cannot_share_an_id(tmp_path):
    import tomllib

    write(tmp_path, json.dumps(tomllib.loads(GOOD)), "tiny.json")
    write(tmp_path, GOOD, "again.toml")
    assert lessons.read_lesson(tmp_path / "tiny.json").id == "tiny"
    with pytest.raises(LessonError, match="id 'tiny' is taken by"):
        lessons.load_lessons([tmp_path])
    bad = write(tmp_path, "{", "bad.json")
    with pytest.raises(LessonError, match="bad.json: not valid JSON"):
        lessons.read_lesson(bad)


def test_each_student_gets_a_seed_or_the_next_value_in_turn(tmp_path):
    by_seed = tiny(tmp_path)
    assert [by_seed.assignment(i) for i in range(3)] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert [c.seed for _, c in by_seed.configs(5)] == [5, 5]
    curve = lessons.get_lesson("when-it-stops", [lessons.LESSONS_DIR])
    n = len(curve.values)
    given = [curve.assignment(i) for i in range(n + 2)]
    assert [g["labels_per_class"] for g in given] == [*curve.values, *curve.values[:2]]
    assert [g["seed"] for g in given] == [0] * n + [1, 1]
    assert {c.labels_per_class for _, c in curve.configs(1)} == {curve.values[1]}


def test_the_environment_shrinks_every_run_but_never_what_the_class_varies(tmp_path, monkeypatch):
    monkeypatch.setenv(lessons.ENV_CONFIG, '{"image_size": 40, "test_per_class": 10, "seed": 99}')
    lesson = tiny(tmp_path)
    assert {(c.image_size, c.test_per_class, c.seed) for _, c in lesson.configs(2)} == {(40, 10, 2)}
    monkeypatch.setenv(lessons.ENV_CONFIG, '{"image_sise": 40}')
    with pytest.raises(LessonError, match="image_sise"):
        lesson.configs(0)


def test_predictions_are_checked_against_the_lesson(tmp_path):
    choice = tiny(tmp_path)
    assert [n for n, _ in choice.choices] == ["a", "b", TIE]
    assert choice.check_prediction("b") == "b"
    with pytest.raises(LessonError, match="pick your answer first"):
        choice.check_prediction(None)
    with pytest.raises(LessonError, match="not an answer"):
        choice.check_prediction("c")
    gap = lessons.get_lesson("pretraining", [lessons.LESSONS_DIR])
    assert gap.check_prediction(20) == 20.0
    with pytest.raises(LessonError, match="between"):
        gap.check_prediction(500)
    meet = lessons.get_lesson("when-it-stops", [lessons.LESSONS_DIR])
    assert meet.check_prediction("10") == 10 and meet.check_prediction(NEVER) == NEVER


# ---- the class on disk ---------------------------------------------------------------------------------------------
TEACHER, S1, S2 = "aaaaaaaa00000000", "bbbbbbbb00000001", "bbbbbbbb00000002"


def test_a_class_keeps_its_code_students_predictions_and_runs_across_processes(tmp_path):
    room = Classroom(tmp_path / "classroom.sqlite")
    code = room.start("pretraining", TEACHER)
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert room.join(code.lower(), S1).index == 0  # a code typed in lower case joins too
    assert room.join(code, S2).index == 1
    assert room.join(code, S1).index == 0  # a rejoin keeps the number
    with pytest.raises(LessonError, match="leads the class"):
        room.join(code, TEACHER)
    with pytest.raises(LessonError, match="no class with the code"):
        room.join("ZZZZZ", S1)
    with pytest.raises(LessonError, match="once the teacher asks"):
        room.predict(code, S1, 10)
    with pytest.raises(LessonError, match="only the teacher"):
        room.set_step(code, "predict", S1)
    room.set_step(code, "predict", TEACHER)
    room.predict(code, S1, 10.0)
    with pytest.raises(LessonError, match="already committed"):
        room.predict(code, S1, 30.0)
    room.add_run(code, S1, "imagenet", "job1", {"seed": 0})
    room.update_run(code, S1, "imagenet", run_id="r1", status="completed", test_acc=0.7, healthy=True)

    again = Classroom(tmp_path / "classroom.sqlite")  # a restarted server
    assert again.get(code).step == "predict" and again.get(code).teacher == TEACHER
    assert [(s.session, s.number, s.prediction) for s in again.students(code)] == [(S1, 1, 10.0), (S2, 2, None)]
    (run,) = again.runs(code, S1)
    assert (run.run_id, run.test_acc, run.healthy, run.done, run.config) == ("r1", 0.7, True, True, {"seed": 0})
    assert [c.code for c in again.classes_of(TEACHER)] == [code]


def test_students_joining_at_once_get_distinct_numbers(tmp_path):
    room = Classroom(tmp_path / "classroom.sqlite")
    code = room.start("pretraining", TEACHER)
    sessions = [f"{i:016x}" for i in range(1, 13)]
    threads = [threading.Thread(target=Classroom(room.path).join, args=(code, s)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s.index for s in room.students(code)) == list(range(len(sessions)))


@dataclass
class FakeJob:
    owner: str
    label: str
    state: str
    run_id: str | None = None
    error: str | None = None
    summary: dict | None = None

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")


class FakeManager:
    def __init__(self, jobs):
        self.jobs = jobs

    def snapshot(self, job_id):
        return self.jobs.get(job_id)


class FakeStore:
    def __init__(self, records):
        self.records = records

    def get_run(self, run_id):
        return self.records.get(run_id)


def test_sync_records_finished_runs_and_trusts_only_the_students_own_jobs(tmp_path):
    room = Classroom(tmp_path / "classroom.sqlite")
    code = room.start("pretraining", TEACHER)
    for s in (S1, S2):
        room.join(code, s)
    room.add_run(code, S1, "imagenet", "job1", {})
    room.add_run(code, S1, "random", "job2", {})
    room.add_run(code, S2, "imagenet", "job3", {})  # a restarted server gave job3 to someone else
    room.add_run(code, S2, "random", "job4", {})  # the manager forgot it, the store has it
    room.update_run(code, S2, "random", run_id="r4")
    manager = FakeManager({
        "job1": FakeJob(S1, run_label(code, "imagenet"), "completed", "r1", summary={"test_acc": 0.75, "health": []}),
        "job2": FakeJob(S1, run_label(code, "random"), "running", "r2"),
        "job3": FakeJob("someoneelse0000", "train", "running", "rx"),
    })
    store = FakeStore({"r4": {"status": "completed", "error": None,
                              "summary": {"test_acc": 0.1, "health": [{"message": "at chance"}]}}})
    assert sync_runs(room, code, manager, store) == 4
    runs = {(r.session, r.arm): r for r in room.runs(code)}
    assert (runs[(S1, "imagenet")].status, runs[(S1, "imagenet")].test_acc) == ("completed", 0.75)
    assert runs[(S1, "imagenet")].healthy is True and runs[(S1, "imagenet")].finished_at
    assert (runs[(S1, "random")].status, runs[(S1, "random")].run_id) == ("running", "r2")
    assert runs[(S2, "imagenet")].status == "lost" and "run it again" in runs[(S2, "imagenet")].error
    assert (runs[(S2, "random")].status, runs[(S2, "random")].healthy) == ("completed", False)
    assert sync_runs(room, code, manager, store) == 0  # nothing new


# ---- the class's answer -------------------------------------------------------------------------------------------
def run(session, arm, acc, value=None, vary="labels_per_class", status="completed", healthy=True):
    config = {"seed": 0, **({vary: value} if value is not None else {})}
    return StudentRun(session, arm, status, f"job-{session}-{arm}", f"r-{session}-{arm}", acc, healthy, None, config,
                      100.0, 112.5)


def students(*predictions):
    return [Student(f"{i:016x}", i, p) for i, p in enumerate(predictions)]


def test_the_gap_is_each_students_own_difference_with_its_spread():
    lesson = lessons.get_lesson("pretraining", [lessons.LESSONS_DIR])
    assert results.answer(lesson, []) is None
    runs = [run("s1", "imagenet", 0.70), run("s1", "random", 0.40), run("s2", "imagenet", 0.74),
            run("s2", "random", 0.40), run("s3", "imagenet", 0.9), run("s3", "random", 0.1, healthy=False),
            run("s4", "imagenet", None, status="failed")]
    found = results.answer(lesson, runs)
    assert found.kind == "gap" and found.n == 2 and found.value == pytest.approx(32.0)
    assert found.spread == pytest.approx(2.83, abs=0.01)
    assert "+32 \u00b1 3 points" in found.text and "2 runs failed or unhealthy, not counted" in found.text
    assert results.is_right(lesson, 30, found) and not results.is_right(lesson, 10, found)
    assert results.verdict(lesson, 10, found).endswith("22 points too low.")
    stats = results.arm_stats(lesson, runs)
    assert [(s.arm, s.n) for s in stats] == [("imagenet", 3), ("random", 2)]  # s3's random: unhealthy; s4: failed
    assert stats[0].mean == pytest.approx(0.78)


def test_a_choice_names_the_winner_or_a_tie():
    lesson = lessons.get_lesson("source-domain", [lessons.LESSONS_DIR])
    runs = [run("s1", "animals-imagenet", 0.68), run("s1", "animals-random", 0.30),
            run("s1", "digits-imagenet", 0.76), run("s1", "digits-random", 0.74)]
    found = results.answer(lesson, runs)
    assert found.value == "animals" and found.scores == pytest.approx({"animals": 38.0, "digits": 2.0})
    assert found.text.startswith("On the animals: +38 points, on the digits: +2 points; the class's answer: "
                                 "\u201cOn the animals\u201d (over 1 student)")
    close = runs[:2] + [run("s1", "digits-imagenet", 0.70), run("s1", "digits-random", 0.34)]
    assert results.answer(lesson, close).value == TIE
    assert results.answer(lesson, runs[:2]) is None  # the digits' gap is not in yet


def test_best_and_meet_read_the_curve_the_room_draws():
    depth = lessons.get_lesson("freeze-depth", [lessons.LESSONS_DIR])
    runs = [run(f"s{d}", "finetune", acc, d, "freeze_depth") for d, acc in ((3, 0.55), (5, 0.6), (7, 0.68), (8, 0.67))]
    found = results.answer(depth, runs)
    assert found.value == 7 and "Freeze depth 7 is best" in found.text
    assert results.is_right(depth, 7, found) and not results.is_right(depth, 3, found)

    meet = lessons.get_lesson("when-it-stops", [lessons.LESSONS_DIR])
    curve = {2: (0.49, 0.44), 5: (0.67, 0.50), 10: (0.76, 0.78), 25: (0.85, 0.89)}
    runs = [r for v, (a, b) in curve.items() for r in (run(f"s{v}", "imagenet", a, v), run(f"s{v}", "scratch", b, v))]
    found = results.answer(meet, runs)
    assert found.value == 10 and "reaches" in found.text and "no result yet at 50 labels per class" in found.text
    assert results.prediction_text(meet, 10) == "10 labels per class"
    below = [r for r in runs if r.config["labels_per_class"] <= 5]
    assert results.answer(meet, below).value == NEVER


def test_the_rooms_predictions_are_counted_for_the_histogram():
    gap = lessons.get_lesson("pretraining", [lessons.LESSONS_DIR])
    counts = results.prediction_counts(gap, students(10.0, 10.0, 30.0, None))
    assert counts[0][0] == "-20" and counts[-1][0] == "60" and len(counts) == 17
    assert {name: c for name, _, c in counts if c} == {"10": 2, "30": 1}
    choice = lessons.get_lesson("source-domain", [lessons.LESSONS_DIR])
    assert results.prediction_counts(choice, students("animals", "digits", "animals")) == [
        ("animals", "On the animals", 2), ("digits", "On the digits", 1), (TIE, "About the same", 0)]


def test_the_class_table_has_a_row_per_student_and_arm_and_the_progress_adds_up():
    lesson = lessons.get_lesson("when-it-stops", [lessons.LESSONS_DIR])
    room = students(10, None, 25)
    runs = [run(room[0].session, "imagenet", 0.7, 2), run(room[0].session, "scratch", None, 2, status="running")]
    rows = results.class_table(lesson, room, runs)
    assert len(rows) == 4 and list(rows[0]) == results.TABLE_COLUMNS
    assert rows[0]["setting"] == "2 labels per class" and rows[0]["prediction"] == "10 labels per class"
    assert rows[0]["counted"] and not rows[1]["counted"] and rows[0]["seconds"] == 12.5
    assert rows[2]["student"] == 2 and rows[2]["arm"] == "" and rows[3]["setting"] == "10 labels per class"
    progress = results.run_progress(lesson, room, runs)
    assert progress == {"students": 3, "predicted": 2, "started": 1, "runs": 2, "expected": 2, "done": 1,
                        "counted": 1, "seconds": None}


# ---- the charts ---------------------------------------------------------------------------------------------------
def test_the_predictions_chart_is_a_histogram_that_marks_the_answer_at_the_reveal():
    from tl_core.presentation import lesson_charts

    lesson = lessons.get_lesson("source-domain", [lessons.LESSONS_DIR])
    empty = lesson_charts.predictions_chart(lesson, students(None))
    assert not empty.data and "No prediction yet" in empty.layout.annotations[0].text
    fig = lesson_charts.predictions_chart(lesson, students("animals", "digits", "animals"))
    assert list(fig.data[0].y) == [2, 1, 0] and list(fig.data[0].x) == ["On the animals", "On the digits",
                                                                         "About the same"]
    meet = lessons.get_lesson("when-it-stops", [lessons.LESSONS_DIR])
    assert list(lesson_charts.predictions_chart(meet, students(10, NEVER)).data[0].x) == ["2", "5", "10", "25", "50",
                                                                                       "> 50"]
    found = results.Answer("choice", "animals", "animals wins", 3)
    fig = lesson_charts.predictions_chart(lesson, students("animals", "digits", "animals"), found)
    assert fig.data[0].marker.color[0] == lesson_charts.ANSWER and fig.data[0].marker.color[1] != lesson_charts.ANSWER
    assert "2 of 3 predicted it" in fig.layout.title.subtitle.text

    gap = lessons.get_lesson("pretraining", [lessons.LESSONS_DIR])
    fig = lesson_charts.predictions_chart(gap, students(10.0, 30.0), results.Answer("gap", 32.0, "", 2))
    assert fig.data[0].x[0] == -20.0 and sum(fig.data[0].y) == 2
    assert fig.layout.shapes[0].x0 == 32.0  # the measured gap, a line across the histogram


def test_the_results_chart_draws_every_students_run_and_the_classes_mean():
    from tl_core.presentation import lesson_charts

    lesson = lessons.get_lesson("pretraining", [lessons.LESSONS_DIR])
    assert "No result yet" in lesson_charts.results_chart(lesson, []).layout.annotations[0].text
    runs = [run(f"s{i}", arm, acc + i / 100) for i in range(5) for arm, acc in (("imagenet", 0.7), ("random", 0.4))]
    fig = lesson_charts.results_chart(lesson, runs)
    dots = [t for t in fig.data if t.mode == "markers"]
    means = [t for t in fig.data if t.mode == "markers+text"]
    assert sum(len(t.y) for t in dots) == 10
    assert [round(t.y[0], 3) for t in means] == [0.72, 0.42] and all(t.error_y.visible for t in means)
    assert "mean \u00b1 std over 5 students" in fig.layout.title.subtitle.text

    curve = lessons.get_lesson("when-it-stops", [lessons.LESSONS_DIR])
    runs = [run(f"s{v}{k}", arm, 0.5 + v / 100, v) for v in (2, 5, 10) for k in range(2)
            for arm in ("imagenet", "scratch")]
    found = results.answer(curve, runs)
    fig = lesson_charts.results_chart(curve, runs, found)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["ImageNet features (frozen)", "From scratch (to convergence)"]
    assert list(lines[0].x) == [0, 1, 2] and list(fig.layout.xaxis.ticktext)[:2] == ["2", "5"]
    assert fig.layout.xaxis.title.text == "labels per class"
    assert fig.layout.shapes[0].x0 == 0  # scratch meets the frozen features at the first value here


def test_the_chart_downloads_as_a_page_that_needs_no_network():
    from tl_core.presentation import lesson_charts

    lesson = lessons.get_lesson("pretraining", [lessons.LESSONS_DIR])
    html = lesson_charts.figure_html(lesson_charts.results_chart(lesson, [run("s1", "imagenet", 0.7)]))
    assert "<html>" in html[:100] and "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js inside
    assert not re.search(r"<script[^>]*src=", html)  # nothing to fetch


# ---- one student through the page (AppTest) -----------------------------------------------------------------------
@pytest.fixture
def lesson_app(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(lessons.ENV_CONFIG, json.dumps({"image_size": 32, "val_per_class": 5, "test_per_class": 10,
                                                       "labels_per_class": 5}))
    yield tmp_path
    from ui import services  # leave no training thread behind

    manager = services._manager(services.data_root(), services.max_concurrent())
    for job in manager.jobs():
        manager.cancel(job.job_id)
        manager.wait(job.job_id, timeout=120)


@pytest.mark.slow
def test_a_student_joins_predicts_runs_and_keeps_everything_on_a_refresh(lesson_app):
    import time

    from apptest_helpers import new_app
    from ui import lesson_session as seats

    room = Classroom(lesson_app / "classroom.sqlite")
    code = room.start("pretraining", TEACHER)
    at = new_app(lesson=code.lower(), s=S1)
    at.switch_page("app_pages/lesson.py").run()
    assert not at.exception, [e.value for e in at.exception]
    page = "\n".join(m.value for m in at.markdown)
    assert "Does pretraining help?" in page and "you are student 1" in "\n".join(c.value for c in at.caption)
    assert room.students(code)[0].session == S1

    room.set_step(code, "predict", TEACHER)
    at.run()
    at.slider(key=seats.PREDICTION_KEY).set_value(25.0)
    submit = next(b for b in at.button if "Commit" in b.label)  # the form's submit button
    submit.click().run()
    assert room.student(code, S1).prediction == 25.0
    assert "Your prediction: **+25 points** (committed)" in "\n".join(m.value for m in at.markdown)

    room.set_step(code, "run", TEACHER)
    at.run()
    at.button(key="lesson_run").click().run()
    assert {r.arm for r in room.runs(code, S1)} == {"imagenet", "random"}
    deadline = time.time() + 180
    while time.time() < deadline and not all(r.done for r in room.runs(code, S1)):
        time.sleep(0.5)
        at.run()
    assert [r.status for r in room.runs(code, S1)] == ["completed", "completed"], room.runs(code, S1)

    refreshed = new_app(lesson=code, s=S1)  # a refresh: a new Streamlit session, the same URL
    refreshed.switch_page("app_pages/lesson.py").run()
    text = "\n".join(m.value for m in refreshed.markdown)
    assert "+25 points" in text and text.count("test accuracy **") == 2
    assert not any(b.key == "lesson_run" for b in refreshed.button)  # nothing to run again

    room.set_step(code, "reveal", TEACHER)
    refreshed.run()
    shown = "\n".join(e.value for kind in ("success", "info") for e in refreshed.get(kind))
    assert "You predicted +25 points; the class measured" in shown


def test_the_lesson_page_offers_every_lesson_and_names_a_bad_file(tmp_path, monkeypatch):
    from apptest_helpers import go, new_app

    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    at = go(new_app(), "lesson")
    assert [t.value for t in at.title] == ["Lesson"]
    assert at.selectbox(key="lesson_pick").options == [x.title for x in lessons.load_lessons()]
    assert at.button(key="lesson_start").label == "Start this lesson"
    at.text_input(key="lesson_join_code").set_value("nope1")
    next(b for b in at.button if b.label == "Join").click().run()
    assert "No class with the code 'NOPE1'" in at.warning[0].value

    own = tmp_path / "own"
    own.mkdir()
    write(own, GOOD.replace('why = "Because."', 'why = 3'), "mine.toml")
    monkeypatch.setenv(lessons.ENV_DIR, str(own))
    at = go(new_app(), "lesson")
    assert "mine.toml: reveal.why: must be text, not int" in at.error[0].value
