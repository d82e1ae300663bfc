"""The Lesson page's layout: the choice (start a lesson as its teacher, or join a class with its code), then the
teacher's screen (ui/lesson_teacher.py) or the student's (ui/lesson_student.py)."""

from __future__ import annotations

import streamlit as st

from tl_core.errors import UserError
from tl_core.lessons import STEPS, Lesson
from ui import lesson_session as seats
from ui.session_id import owner

STEP_TITLES = {"join": "Join", "predict": "Predict", "run": "Run", "reveal": "Reveal"}


def note() -> None:
    """What the last click has to say (a wrong code, a prediction made twice), once."""
    text = seats.take_note()
    if text:
        st.warning(text, icon=":material/info:")


def steps_line(step: str) -> str:
    """"**1 Join** → 2 Predict → 3 Run → 4 Reveal" with the current step in bold."""
    parts = []
    for i, name in enumerate(STEPS, start=1):
        text = f"{i} {STEP_TITLES[name]}"
        parts.append(f"**:blue-background[{text}]**" if name == step else f":gray[{text}]")
    return " → ".join(parts)


def lesson_card(lesson: Lesson) -> None:
    """What a teacher reads before starting a lesson: its setting, question, protocol and cost."""
    st.markdown(f"**{lesson.setting}**")
    st.markdown(f"*{lesson.question}*")
    per_student = ("each student trains with their own seed" if lesson.vary == "seed" else
                   f"the class shares out {lesson.vary.replace('_', ' ')} = {', '.join(map(str, lesson.values))}, "
                   "one value per student, so the room draws the whole curve")
    runs = ", ".join(a.label.lower() for a in lesson.arms)
    st.caption(f"Each student runs: {runs}; {per_student}. {lesson.protocol}")
    if lesson.minutes:
        st.caption(f":material/timer: About {lesson.minutes:g} min from Run to the reveal for a class of thirty on a "
                   "two-core server (less with fewer students or more cores).")


def chooser() -> None:
    """No class yet: start one (a teacher) or join one (a student)."""
    st.write("A lesson is one question for the whole class. Everyone predicts the answer first, then runs the "
             "experiment with their own seed or setting, and the class's results are revealed beside the "
             "predictions: together the room is one experiment.")
    learn, teach = st.columns(2, gap="large")
    with learn:
        st.subheader(":material/school: Join a class")
        with st.form("lesson_join", border=False):
            st.text_input("Class code", key=seats.JOIN_KEY, placeholder="e.g. K7QX2", max_chars=12,
                          help="The code on the teacher's screen (or open the link it shows).")
            st.form_submit_button("Join", type="primary", on_click=seats.join_class)
    with teach:
        st.subheader(":material/co_present: Teach a lesson")
        try:
            all_lessons = seats.lessons()
        except UserError as err:
            st.error(f"A lesson file cannot be read: {err}")
            return
        by_id = {x.id: x for x in all_lessons}
        picked = st.selectbox("Lesson", list(by_id), format_func=lambda i: by_id[i].title, key=seats.PICK_KEY)
        lesson_card(by_id[picked])
        st.button("Start this lesson", type="primary", on_click=seats.start_lesson, key="lesson_start",
                  help="Gives you a class code and a link for the students; you set the pace from your screen.")
        mine = seats.classroom().classes_of(owner())
        if mine:
            with st.expander(f"Your classes ({len(mine)})"):
                for info in mine[:10]:
                    title = by_id[info.lesson_id].title if info.lesson_id in by_id else info.lesson_id
                    st.button(f"{info.code} · {title} · {STEP_TITLES.get(info.step, info.step)} · "
                              f"{info.created_at.replace('T', ' ')[:16]}", key=f"lesson_back_{info.code}",
                              on_click=seats.return_to, args=(info.code,), type="tertiary")
