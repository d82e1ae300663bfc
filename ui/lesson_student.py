"""A student's screen of a lesson: the setting and the question, the prediction they commit to, the one click that
runs their experiment, their own result, and at the reveal the class's result beside their prediction.

The page follows the teacher's pace by itself: a small poll looks at the class's step and the student's runs and
redraws the page when either changed.
"""

from __future__ import annotations

import streamlit as st

from tl_core.lessons import Lesson, value_text
from tl_core.presentation import lesson_charts
from tl_core.runs import lesson_results as results
from tl_core.runs.classroom import StudentRun
from ui import lesson_session as seats
from ui import views
from ui.lesson_session import Seat
from ui.lesson_view import steps_line

POLL_S = 1.0
WAIT_POLL_S = 2.0  # nothing of the student's is running: only the teacher's pace can change


def _mine_text(lesson: Lesson, index: int) -> str:
    given = lesson.assignment(index)
    if lesson.vary == "seed":
        return f"seed {given['seed']}"
    return f"{value_text(lesson.vary, given[lesson.vary])}, seed {given['seed']}"


def prediction_widget(seat: Seat) -> None:
    """The prediction, committed with one button; a committed one is shown instead, final."""
    lesson, me = seat.lesson, seat.student
    p = lesson.prediction
    if me.prediction is not None:
        st.markdown(f":material/how_to_vote: Your prediction: **{results.prediction_text(lesson, me.prediction)}** "
                    "(committed)")
        return
    st.markdown(f"**{p.prompt}**")
    with st.form("lesson_predict", border=False):
        if p.kind == "gap":
            st.slider("Points of test accuracy", min_value=float(p.low), max_value=float(p.high), step=float(p.step),
                      value=float(p.low + p.high) / 2 // p.step * p.step, key=seats.PREDICTION_KEY,
                      format="%+g points")
        else:
            names = [name for name, _ in lesson.choices]
            labels = dict(lesson.choices)
            st.radio("Your answer", names, format_func=labels.get, key=seats.PREDICTION_KEY, index=None,
                     horizontal=len(names) <= 6)
        st.form_submit_button("Commit my prediction", type="primary", on_click=seats.commit_prediction,
                              args=(seat.code, lesson.id),
                              help="Final once committed: a prediction made before the result is what you learn from.")


def run_status(run: StudentRun) -> tuple[str, float | None]:
    """One line for one of the student's runs and the progress bar's value (None when it ended)."""
    job = seats.job_of(run)
    if run.status == "completed" and run.test_acc is not None:
        health = "" if run.healthy is not False else " (unhealthy: not counted)"
        return f":material/check_circle: test accuracy **{100 * run.test_acc:.1f}%**{health}", None
    if run.done:
        return f":material/error: {run.status}: {run.error or 'the run did not finish'}", None
    if job is None:
        return "queued", 0.0
    return views.progress_text(job), views.progress_value(job)


def runs_part(seat: Seat, poll) -> None:
    """The Run button (until every arm is queued), each finished run's result, and the poll with the running ones'
    progress bars."""
    lesson, me = seat.lesson, seat.student
    mine = {r.arm: r for r in seats.my_runs(seat.code)}
    startable = any(a.name not in mine or mine[a.name].status in ("lost", "failed", "cancelled")
                    for a in lesson.arms)
    if seat.info.step == "run" and startable:
        st.button("Run my experiment", type="primary", key="lesson_run", on_click=seats.start_runs, args=(seat.code,),
                  disabled=me.prediction is None, icon=":material/play_arrow:",
                  help="Trains every arm of the lesson on this server with your own seed and setting.")
        if me.prediction is None:
            st.caption("Commit your prediction first: predict, then run.")
    for arm in lesson.arms:
        run = mine.get(arm.name)
        if run is not None and run.done:
            st.markdown(f"{arm.label}: {run_status(run)[0]}")
    poll()


def reveal_part(seat: Seat) -> None:
    """The class's answer beside the student's prediction, the class's chart and why."""
    lesson = seat.lesson
    _, students, runs = seats.class_state(seat.code)
    found = results.answer(lesson, runs)
    me = next((s for s in students if s.session == seat.student.session), seat.student)
    line = results.verdict(lesson, me.prediction, found)
    right = results.is_right(lesson, me.prediction, found)
    (st.success if right else st.info)(line, icon=":material/lightbulb:")
    if found is not None:
        st.markdown(f"**The class measured:** {found.text}")
    st.markdown(f"**Why:** {lesson.why}")
    views.chart(lesson_charts.results_chart, lesson, runs, found, 360, key="lesson_student_results")


def fingerprint(seat: Seat) -> tuple:
    """What the page was drawn for: the class's step, the student's runs, and at the reveal the class's results."""
    info, _, runs = seats.class_state(seat.code)
    mine = tuple((r.arm, r.status if r.done else "") for r in runs if r.session == seat.student.session)
    counted = len(results.counted(runs)) if info is not None and info.step == "reveal" else 0
    return (info.step if info else None, mine, counted)


def live_runs(seat: Seat) -> bool:
    """The poll: records the student's finished runs and shows their progress; True while any of them runs."""
    seats.sync(seat.code, mine_only=True)
    mine = {r.arm: r for r in seats.my_runs(seat.code)}
    running = [r for r in mine.values() if not r.done]
    for r in running:
        text, value = run_status(r)
        st.progress(value or 0.0, text=f"{seat.lesson.arm(r.arm).label}: {text}")
    return True


def screen(seat: Seat) -> None:
    lesson, me, step = seat.lesson, seat.student, seat.info.step
    st.markdown(f"### {lesson.title}")
    st.caption(f"Class {seat.code} · you are student {me.number} · your runs: {_mine_text(lesson, me.index)} · "
               f"{steps_line(step)}")
    st.info(lesson.setting, icon=":material/science:")
    if step == "join":
        st.markdown(f"**{lesson.question}**")
        st.write("You are in. The teacher opens the predictions when the class is ready; this page follows by itself.")
    else:
        st.markdown(f"**{lesson.question}**")
        prediction_widget(seat)
    drawn = fingerprint(seat)
    running = any(not r.done for r in seats.my_runs(seat.code))

    def poll() -> None:
        """Follows the teacher's pace and the student's runs: redraws the page when either changed."""
        views.live(lambda: not running or live_runs(seat), active=True, every=POLL_S if running else WAIT_POLL_S,
                   changed=lambda: fingerprint(seat) != drawn)

    if step == "reveal":  # the answer first, beside the prediction just above it
        st.divider()
        reveal_part(seat)
    if step in ("run", "reveal"):
        st.divider()
        st.caption(lesson.protocol)
        runs_part(seat, poll)
    else:
        poll()
    st.button("Leave this class", key="lesson_leave", on_click=seats.leave, type="tertiary",
              help="Your prediction and runs stay with the class: the link or the code brings you back.")
