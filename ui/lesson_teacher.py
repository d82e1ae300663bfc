"""The teacher's screen of a lesson, sized for a 1280x800 projector: the code and the link, the pace (next step,
reveal), and live, how many joined, the room's predictions and the class's results as they finish."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from tl_core.lessons import STEPS
from tl_core.presentation import lesson_charts
from tl_core.runs import lesson_results as results
from ui import lesson_session as seats
from ui import views
from ui.lesson_session import Seat
from ui.lesson_view import STEP_TITLES, steps_line

POLL_S = 1.0
CHART_HEIGHT = 360
REVEAL_HEIGHT = 310  # the answer's box takes the rest: both charts still fit a 1280x800 projector
NEXT_LABEL = {"join": "Open the predictions", "predict": "Open the runs", "run": "Reveal the result"}


def header(seat: Seat) -> None:
    """Title and question beside the way in (the code and the link: large while students join, one line once the
    runs are open), then the pace: where the class is, and the buttons that move it."""
    info, lesson = seat.info, seat.lesson
    joining = info.step in ("join", "predict")
    left, right = st.columns([3, 2], vertical_alignment="top")
    with left:
        st.markdown(f"### {lesson.title}")
        st.markdown(f"**{lesson.question}**")
        if joining:  # the students have it on their screens; once the runs are open the charts need the room
            st.caption(lesson.setting)
    with right:
        if joining:
            st.markdown("Class code: <span style='font-size:2.6rem;font-weight:700;letter-spacing:0.12em' "
                        f"data-testid='lesson-code'>{info.code}</span>", unsafe_allow_html=True)
            st.code(seats.join_url(info.code), language=None)
            if seats.local_address():
                st.caption("Students on other computers open this with the server's network name or address in "
                           "place of the local one.")
        else:
            st.markdown("Class code: <span style='font-size:1.6rem;font-weight:700;letter-spacing:0.12em' "
                        f"data-testid='lesson-code'>{info.code}</span>", unsafe_allow_html=True)
            st.caption(seats.join_url(info.code))
    pace, back, forward = st.columns([4, 1, 2], vertical_alignment="center")
    pace.markdown(steps_line(info.step))
    i = STEPS.index(info.step)
    back.button("Back", key="lesson_back", disabled=i == 0, on_click=seats.set_step, width="stretch",
                args=(info.code, STEPS[max(0, i - 1)]), icon=":material/arrow_back:")
    if info.step != STEPS[-1]:
        forward.button(NEXT_LABEL[info.step], key="lesson_next", type="primary", on_click=seats.set_step,
                       args=(info.code, STEPS[i + 1]), icon=":material/arrow_forward:", width="stretch")


def status_line(progress: dict) -> str:
    line = (f":material/group: **{progress['students']}** joined · :material/how_to_vote: **{progress['predicted']}** "
            f"predicted · :material/model_training: runs **{progress['done']}** of {progress['runs']} finished")
    if progress["seconds"] is not None:
        line += f" · all in {views.fmt_seconds(progress['seconds'])} from the first Run"
    return line


def body(seat: Seat) -> bool:
    """The live part: counts, the two charts, and at the reveal the answer and why. True while something may still
    change (the class is not at the reveal, or runs are still going)."""
    seats.sync(seat.code)
    info, students, runs = seats.class_state(seat.code)
    if info is None:
        return False
    lesson = seat.lesson
    progress = results.run_progress(lesson, students, runs)
    found = results.answer(lesson, runs)
    reveal = info.step == "reveal"
    st.markdown(status_line(progress))
    if reveal:
        if found is None:
            st.info("The reveal waits for the first results: the chart fills in as runs finish.")
        else:
            right, made = results.right_count(lesson, students, found)
            st.success(f"**{found.text}** {right} of {made} predicted it. {lesson.why}", icon=":material/lightbulb:")
    height = REVEAL_HEIGHT if reveal else CHART_HEIGHT
    left, right_col = st.columns(2)
    with left:
        views.chart(lesson_charts.predictions_chart, lesson, students, found if reveal else None, height,
                    key="lesson_predictions")
    with right_col:
        if info.step in ("join", "predict"):
            st.caption("The class's results appear here once the runs are open: each student's run a dot, the "
                       f"class's mean with its spread. {lesson.protocol}")
        else:
            views.chart(lesson_charts.results_chart, lesson, runs, found if reveal else None, height,
                        key="lesson_results")
    return not (reveal and progress["done"] == progress["runs"])


def downloads(seat: Seat) -> None:
    """The class's table as CSV and its chart as a self-contained HTML page (PNG needs kaleido, not installed)."""
    code, lesson = seat.code, seat.lesson

    def table_csv() -> bytes:
        _, students, runs = seats.class_state(code)
        buf = io.StringIO()
        pd.DataFrame(results.class_table(lesson, students, runs), columns=results.TABLE_COLUMNS).to_csv(buf,
                                                                                                        index=False)
        return buf.getvalue().encode()

    def chart_html() -> bytes:
        info, students, runs = seats.class_state(code)
        found = results.answer(lesson, runs) if info and info.step == "reveal" else None
        return lesson_charts.figure_html(lesson_charts.results_chart(lesson, runs, found)).encode()

    a, b, c = st.columns([2, 2, 3], vertical_alignment="center")
    a.download_button("Results (CSV)", table_csv, file_name=f"lesson-{lesson.id}-{code}.csv", mime="text/csv",
                      key="lesson_csv", on_click="ignore", icon=":material/download:")
    b.download_button("Chart (HTML)", chart_html, file_name=f"lesson-{lesson.id}-{code}.html", mime="text/html",
                      key="lesson_html", on_click="ignore", icon=":material/download:")
    c.button("Leave this screen (the class goes on)", key="lesson_leave", on_click=seats.leave, type="tertiary")


def screen(seat: Seat) -> None:
    header(seat)
    info, _, runs = seats.class_state(seat.code)
    still = not (info is not None and info.step == "reveal" and all(r.done for r in runs))
    views.live(lambda: body(seat), active=still, every=POLL_S)
    downloads(seat)
    st.caption(f"Step {STEPS.index(seat.info.step) + 1} of {len(STEPS)}: {STEP_TITLES[seat.info.step]}. "
               "This screen keeps the class: a refresh, or this URL on another computer, brings it back.")
