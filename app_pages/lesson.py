"""Lesson: one question for the whole class. The teacher starts a lesson and sets the pace; each student predicts,
runs the experiment with their own seed or setting, and sees the class's result beside their prediction."""

import streamlit as st

from ui import lesson_session, lesson_student, lesson_teacher, lesson_view

seat = lesson_session.seat()
if seat is None:
    st.title("Lesson")
    lesson_view.note()
    lesson_view.chooser()
elif seat.teacher:
    lesson_view.note()
    lesson_teacher.screen(seat)
else:
    lesson_view.note()
    lesson_student.screen(seat)
