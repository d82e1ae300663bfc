"""A lesson in real chromium: a teacher and three students, each in their own browser context, on one real server.

The teacher starts "Does pretraining help?" and reads the class code off the screen; the students open the join
link, commit their predictions, and each clicks Run once (two frozen runs each, on the server's worker processes).
The teacher's screen shows the three predictions as a histogram and the six runs aggregated (mean and spread over
the students' seeds); a student who refreshes keeps their prediction and results; at the reveal each student reads
their prediction beside the class's answer; a teacher who refreshes keeps the class.

The server is this file's own (the fixtures of conftest.py start the browser): the lesson's runs are shrunk with
TL_LESSON_CONFIG (32 px, 5 validation and 10 test images per class), so each takes about a second. With
TL_SCREENSHOTS set, a lesson step, the reveal and the teacher's view are kept at 1280x800 in that folder.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from tl_core.runs.classroom import Classroom
from ui.server_process import AppServer

pytestmark = pytest.mark.e2e

STUDENTS = 3
SMALL = {"image_size": 32, "val_per_class": 5, "test_per_class": 10}
#: The predictions the three students commit: the slider starts at +20 and moves one step (5 points) per key.
STEPS_RIGHT = [1, 2, 4]  # +25, +30, +40
RUNS_TIMEOUT_MS = 120_000
SHOTS = Path(os.environ["TL_SCREENSHOTS"]) if os.environ.get("TL_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def lesson_server(tmp_path_factory):
    """The app with tiny lesson runs, worker processes and an activation cache of its own."""
    data_dir = tmp_path_factory.mktemp("tl_lesson_e2e")
    env = {"TL_RUNNER": "local", "TL_ACTIVATION_CACHE_DIR": str(data_dir / "activation-cache"),
           "TL_LESSON_CONFIG": json.dumps(SMALL)}
    with AppServer(data_dir, data_dir / "streamlit.log", env=env) as server:
        server.wait_healthy()
        yield server


def shot(page: Page, name: str) -> None:
    """The projector's view (1280x800, no scrolling), only when TL_SCREENSHOTS names a folder."""
    if SHOTS is None:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1275, 795)  # no hover tooltip over the content
    page.wait_for_timeout(1200)  # the charts lay themselves out
    page.screenshot(path=str(SHOTS / f"{name}.png"), animations="disabled")


def main_text(page: Page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def plot_data(page: Page, key: str) -> list[dict]:
    """The traces of the plotly chart of element key `key` (its current, not stale, copy)."""
    return page.evaluate("""(sel) => {
        const g = document.querySelector(sel + ':not([data-stale="true"]) .js-plotly-plot');
        return g && g.data ? g.data.map(t => ({x: t.x, y: t.y, mode: t.mode || null, type: t.type})) : null; }""",
                         f".st-key-{key}")


def wait_for_chart(page: Page, key: str, check, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    data = None
    while time.monotonic() < deadline:
        data = plot_data(page, key)
        if data and check(data):
            return data
        page.wait_for_timeout(250)
    raise AssertionError(f"chart {key} never showed what was expected: {data}")


def open_page(new_context, url: str) -> Page:
    page = new_context().new_page()
    page.goto(url)
    return page


def test_a_teacher_and_three_students_take_a_lesson(lesson_server, new_context):
    base = lesson_server.url
    started = time.monotonic()

    # ---- the teacher starts the lesson ---------------------------------------------------------------------------
    teacher = open_page(new_context, f"{base}/lesson")
    expect(teacher.get_by_role("button", name="Start this lesson")).to_be_enabled(timeout=90_000)
    teacher.get_by_role("button", name="Start this lesson").click()
    code_box = teacher.locator('[data-testid="lesson-code"]')
    expect(code_box).to_be_visible()
    code = code_box.inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{5}", code), code
    expect(teacher).to_have_url(re.compile(rf"[?&]lesson={code}"))
    link = teacher.locator('[data-testid="stCode"]').inner_text().strip()
    assert link.endswith(f"/lesson?lesson={code}"), link

    # ---- three students join by the link ---------------------------------------------------------------------------
    students = []
    for i in range(STUDENTS):
        page = open_page(new_context, f"{base}/lesson?lesson={code}")
        expect(page.get_by_text(f"you are student {i + 1}", exact=False)).to_be_visible(timeout=60_000)
        expect(page).to_have_url(re.compile(r"[?&]s=[0-9a-f]{16}"))
        students.append(page)
    expect(teacher.get_by_text(re.compile(rf"{STUDENTS}\s+joined"))).to_be_visible()

    # ---- predict: the students' pages follow the teacher's pace by themselves -------------------------------------
    teacher.get_by_role("button", name="Open the predictions").click()
    for page, steps in zip(students, STEPS_RIGHT):
        slider = page.locator('.st-key-lesson_prediction input[type="range"]')
        expect(slider).to_be_visible(timeout=30_000)
        slider.focus()
        for _ in range(steps):
            slider.press("ArrowRight")
        expect(slider).to_have_attribute("aria-valuetext", f"+{20 + 5 * steps} points")
        if page is students[0]:
            shot(page, "lesson-student")  # a lesson step: the question and the prediction, before it is committed
        page.get_by_role("button", name="Commit my prediction").click()
        expect(page.get_by_text(f"Your prediction: +{20 + 5 * steps} points")).to_be_visible()
    expect(teacher.get_by_text(re.compile(rf"{STUDENTS}\s+predicted"))).to_be_visible()
    bars = wait_for_chart(teacher, "lesson_predictions", lambda d: sum(d[0]["y"]) == STUDENTS)
    assert {x for x, y in zip(bars[0]["x"], bars[0]["y"]) if y} == {25, 30, 40}

    # ---- run: one click each ---------------------------------------------------------------------------------------
    teacher.get_by_role("button", name="Open the runs").click()
    run_clicked = time.monotonic()
    for page in students:
        button = page.get_by_role("button", name="Run my experiment")
        expect(button).to_be_enabled(timeout=30_000)
        button.click()
    runs = 2 * STUDENTS
    expect(teacher.get_by_text(re.compile(rf"runs\s+{runs}\s+of\s+{runs}\s+finished"))).to_be_visible(
        timeout=RUNS_TIMEOUT_MS)
    runs_s = time.monotonic() - run_clicked
    traces = wait_for_chart(teacher, "lesson_results",
                            lambda d: sum(len(t["y"]) for t in d if t["mode"] == "markers") == runs)
    means = [t for t in traces if t["mode"] == "markers+text"]
    assert len(means) == 2 and means[0]["y"][0] > means[1]["y"][0], means  # ImageNet features above random ones
    assert "mean ± std over 3 students" in main_text(teacher)

    # ---- a student refreshes: prediction and runs are still theirs -------------------------------------------------
    first = students[0]
    session = parse_qs(urlparse(first.url).query)["s"][0]
    first.reload()
    expect(first.get_by_text("Your prediction: +25 points (committed)")).to_be_visible(timeout=60_000)
    expect(first.get_by_text(re.compile(r"test accuracy \d+\.\d%"))).to_have_count(2)
    expect(first.get_by_role("button", name="Run my experiment")).to_have_count(0)
    assert parse_qs(urlparse(first.url).query)["s"] == [session]

    # ---- reveal ------------------------------------------------------------------------------------------------------
    teacher.get_by_role("button", name="Reveal the result").click()
    answer = teacher.locator('[data-testid="stAlert"]').filter(has_text="predicted it")
    expect(answer).to_have_text(re.compile(r"minus Random weights, frozen: [+-]\d+ ± \d+ points .*\d of 3 predicted"))
    shot(teacher, "lesson-teacher")
    for page, steps in zip(students, STEPS_RIGHT):
        verdict = page.locator('[data-testid="stAlert"]').filter(has_text="You predicted")
        expect(verdict).to_contain_text(f"You predicted +{20 + 5 * steps} points; the class measured", timeout=30_000)
    shot(students[1], "lesson-reveal")

    # ---- the teacher refreshes: the class is still there, at the reveal ------------------------------------------
    teacher.reload()
    expect(teacher.locator('[data-testid="lesson-code"]')).to_have_text(code, timeout=60_000)
    expect(teacher.get_by_text(re.compile(rf"runs\s+{runs}\s+of\s+{runs}\s+finished"))).to_be_visible()
    expect(teacher.get_by_role("button", name="Reveal the result")).to_have_count(0)

    room = Classroom(lesson_server.data_dir / "classroom.sqlite")
    assert [s.prediction for s in room.students(code)] == [25.0, 30.0, 40.0]
    assert sorted(r.status for r in room.runs(code)) == ["completed"] * runs
    assert len({r.config["seed"] for r in room.runs(code)}) == STUDENTS  # each student their own seed
    print(f"\n[e2e] lesson of {STUDENTS}: runs {runs_s:.1f} s from the first click, "
          f"whole test {time.monotonic() - started:.1f} s")
