"""The Lesson page's state: which class this browser session is in and as whom (its teacher or a student), and what
its buttons do. The class itself lives on the server (tl_core.runs.classroom, one SQLite file), so a refresh, a
rejoin from the same URL (`?lesson=CODE&s=...`) or a restarted server loses neither a prediction nor a run.

Students' runs go through the server's job manager like every other run (worker processes, the shared activation
cache), labelled `lesson:CODE:ARM` and owned by the student's session.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import streamlit as st

from tl_core import lessons as lesson_files
from tl_core.errors import UserError
from tl_core.lessons import Lesson, LessonError
from tl_core.runs import classroom as rooms
from tl_core.runs.classroom import ClassInfo, Classroom, Student, StudentRun
from ui import messages
from ui.services import data_root, manager, store
from ui.session_id import owner

_log = logging.getLogger(__name__)
CODE_PARAM = "lesson"  # ?lesson=CODE: the class a URL opens
JOIN_KEY = "lesson_join_code"  # the code a student types
PICK_KEY = "lesson_pick"  # the lesson a teacher picks
PREDICTION_KEY = "lesson_prediction"
_CODE = "_lesson_code"
_NOTE = "lesson"
TEACHER, STUDENT = "teacher", "student"


@st.cache_resource(show_spinner=False)
def _classroom(root: str) -> Classroom:
    return Classroom(f"{root}/classroom.sqlite")


def classroom() -> Classroom:
    """The classes of this server (every session shares the one file)."""
    return _classroom(data_root())


@st.cache_resource(show_spinner=False, ttl=30)
def _lessons(own_folder: str, config: str) -> list[Lesson]:
    return lesson_files.load_lessons()


def lessons() -> list[Lesson]:
    """Every lesson (read again at most every 30 s, so a teacher's new file appears without a restart); a bad file
    raises LessonError with its file and key."""
    return _lessons(os.environ.get(lesson_files.ENV_DIR, ""), os.environ.get(lesson_files.ENV_CONFIG, ""))


def lesson(lesson_id: str) -> Lesson:
    found = next((x for x in lessons() if x.id == lesson_id), None)
    if found is None:
        raise LessonError(f"this class runs the lesson '{lesson_id}', which this server no longer has")
    return found


@dataclass(frozen=True)
class Seat:
    """This session's place in a class."""

    info: ClassInfo
    lesson: Lesson
    role: str  # TEACHER or STUDENT
    student: Student | None = None  # a student's number and prediction

    @property
    def code(self) -> str:
        return self.info.code

    @property
    def teacher(self) -> bool:
        return self.role == TEACHER


# ---- which class ----------------------------------------------------------------------------------------------------
def current_code() -> str | None:
    """The class this session is in: the URL's ?lesson= (a join link, a refresh), else the one it joined or started;
    always mirrored into the URL, so the address bar is the way back."""
    ss = st.session_state
    from_url = rooms.normal_code(st.query_params.get(CODE_PARAM, ""))
    if from_url:
        ss[_CODE] = from_url
    code = ss.get(_CODE)
    if code and st.query_params.get(CODE_PARAM) != code:
        st.query_params[CODE_PARAM] = code
    return code


def seat() -> Seat | None:
    """This session's seat in its class, joining it as a student on the first visit; None when it is in none. A code
    that names no class is forgotten, with a note that says so."""
    code = current_code()
    if not code:
        return None
    try:
        info = classroom().require(code)
        found = lesson(info.lesson_id)
        if info.teacher == owner():
            return Seat(info, found, TEACHER)
        me = classroom().student(code, owner()) or classroom().join(code, owner())
        return Seat(info, found, STUDENT, me)
    except UserError as err:
        messages.leave_note(_NOTE, str(err))
        leave()
        return None


def leave() -> None:
    """Back to the choice of lessons (the class goes on; the URL with ?lesson= brings this session back)."""
    st.session_state.pop(_CODE, None)
    if CODE_PARAM in st.query_params:
        del st.query_params[CODE_PARAM]


def take_note() -> str | None:
    return messages.take_note(_NOTE)


def join_url(code: str) -> str:
    """The address students open: this page's URL as the teacher's browser reached it, with the class code."""
    base = (st.context.url or "").split("?", 1)[0].rstrip("/")
    return f"{base if base.endswith('/lesson') else base + '/lesson'}?{CODE_PARAM}={code}"


def local_address() -> bool:
    """True when the teacher reached the server as localhost: students need the machine's network name instead."""
    url = st.context.url or ""
    return "://localhost" in url or "://127.0.0.1" in url


# ---- the buttons ----------------------------------------------------------------------------------------------------
def start_lesson() -> None:
    """Start a class for the picked lesson; this session is its teacher."""
    lesson_id = st.session_state.get(PICK_KEY)
    try:
        code = classroom().start(lesson(lesson_id).id, owner())
    except UserError as err:
        messages.leave_note(_NOTE, str(err))
        return
    st.session_state[_CODE] = code
    st.query_params[CODE_PARAM] = code


def join_class() -> None:
    """Join the class whose code was typed."""
    code = rooms.normal_code(st.session_state.get(JOIN_KEY, ""))
    if not code:
        messages.leave_note(_NOTE, "Type the code on the teacher's screen.")
        return
    if classroom().get(code) is None:
        messages.leave_note(_NOTE, f"No class with the code '{code}': check the code on the teacher's screen.")
        return
    st.session_state[_CODE] = code
    st.query_params[CODE_PARAM] = code


def return_to(code: str) -> None:
    """A teacher back to one of their classes."""
    st.session_state[_CODE] = code
    st.query_params[CODE_PARAM] = code


def set_step(code: str, step: str) -> None:
    try:
        classroom().set_step(code, step, owner())
    except UserError as err:
        messages.leave_note(_NOTE, str(err))


def commit_prediction(code: str, lesson_id: str) -> None:
    """Commit the prediction the widget holds: once, and before the reveal."""
    try:
        value = lesson(lesson_id).check_prediction(st.session_state.get(PREDICTION_KEY))
        classroom().predict(code, owner(), value)
    except UserError as err:
        messages.leave_note(_NOTE, str(err))


def start_runs(code: str) -> None:
    """The student's one click: every arm of the lesson with their own seed and setting, queued on the server. An arm
    already queued, running or finished is not queued again; a lost or failed one is."""
    try:
        info = classroom().require(code)
        found = lesson(info.lesson_id)
        me = classroom().student(code, owner())
        if me is None:
            raise LessonError("join the class first")
        if me.prediction is None:
            raise LessonError("commit your prediction first: predict, then run")
        if info.step != "run":
            raise LessonError("the teacher opens the runs: wait for the run step")
        have = {r.arm for r in classroom().runs(code, owner()) if r.status not in ("lost", "failed", "cancelled")}
        for arm, config in found.configs(me.index):
            if arm.name in have:
                continue
            job_id = manager().submit(config, owner=owner(), label=rooms.run_label(code, arm.name))
            classroom().add_run(code, owner(), arm.name, job_id, config.to_dict())
    except UserError as err:
        messages.leave_note(_NOTE, str(err))


# ---- reading the class --------------------------------------------------------------------------------------------
def sync(code: str, mine_only: bool = False) -> None:
    """Record what finished since the last look (the whole class for the teacher, the student's own runs)."""
    try:
        rooms.sync_runs(classroom(), code, manager(), store(), owner() if mine_only else None)
    except Exception as err:  # noqa: BLE001 - a busy database must not break a page that only polls
        _log.warning("could not sync class %s: %s", code, err)


def class_state(code: str) -> tuple[ClassInfo | None, list[Student], list[StudentRun]]:
    room = classroom()
    return room.get(code), room.students(code), room.runs(code)


def my_runs(code: str) -> list[StudentRun]:
    return classroom().runs(code, owner())


def job_of(run: StudentRun):
    """The live job of a student's run (progress), or None once the manager no longer holds it."""
    if not run.job_id:
        return None
    job = manager().snapshot(run.job_id)
    return job if job is not None and job.owner == run.session else None
