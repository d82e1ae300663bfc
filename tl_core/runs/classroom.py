"""A class taking a lesson together: its code, its step, its students, their predictions and their runs.

One SQLite file beside the run store (`$TL_DATA_DIR/classroom.sqlite`, WAL), so every browser session of the server,
and a server restarted mid-lesson, reads the same class: the teacher's screen, thirty students' pages and their
refreshes. A student is their session id (the `?s=` of their URL) and their number in join order; a run is the
job the manager queued for one arm of the lesson (its label `lesson:CODE:ARM`, its owner the student's session),
then the run id and result the run store holds.

`sync_runs` brings the class's unfinished runs up to date from the job manager and the run store; the pages call it
when they poll, so a result is recorded even when its student has closed the page.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tl_core.lessons import STEPS, LessonError
from tl_core.paths import default_root
from tl_core.runs.sqlite_files import create_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
    code TEXT PRIMARY KEY, lesson_id TEXT NOT NULL, teacher TEXT NOT NULL, step TEXT NOT NULL,
    created_at TEXT, step_at REAL);
CREATE TABLE IF NOT EXISTS students (
    code TEXT REFERENCES classes(code) ON DELETE CASCADE, session TEXT NOT NULL, idx INTEGER NOT NULL,
    joined_at TEXT, prediction TEXT, predicted_at TEXT, PRIMARY KEY (code, session), UNIQUE (code, idx));
CREATE TABLE IF NOT EXISTS class_runs (
    code TEXT REFERENCES classes(code) ON DELETE CASCADE, session TEXT NOT NULL, arm TEXT NOT NULL,
    job_id TEXT, run_id TEXT, status TEXT NOT NULL, test_acc REAL, healthy INTEGER, error TEXT, config TEXT,
    submitted_at REAL, finished_at REAL, PRIMARY KEY (code, session, arm));
"""
#: Join codes: no 0/O, 1/I/L, so a code read off a projector is typed right.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 5
DONE = ("completed", "failed", "cancelled", "lost")
#: A job the manager no longer knows (the server restarted before the run started): the student may run again.
LOST = "lost"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def normal_code(code: str) -> str:
    """A code as typed ("  k7q x2 ") in the form it is stored ("K7QX2")."""
    return "".join(str(code or "").split()).upper()


@dataclass(frozen=True)
class ClassInfo:
    code: str
    lesson_id: str
    teacher: str
    step: str
    created_at: str
    step_at: float


@dataclass(frozen=True)
class Student:
    session: str
    index: int  # join order, from 0: picks the student's seed and setting (Lesson.assignment)
    prediction: Any = None  # None until committed
    joined_at: str = ""

    @property
    def number(self) -> int:
        """What the screens call the student: "student 1" is the first to join."""
        return self.index + 1


@dataclass(frozen=True)
class StudentRun:
    session: str
    arm: str
    status: str  # a JobState value, or "lost"
    job_id: str | None = None
    run_id: str | None = None
    test_acc: float | None = None
    healthy: bool | None = None
    error: str | None = None
    config: dict | None = None
    submitted_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE


class Classroom:
    def __init__(self, path: str | os.PathLike | None = None):
        path = Path(path) if path else default_root() / "classroom.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._create()

    def _create(self) -> None:
        create_wal(self._connect, SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # explicit transactions below
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction, taken at once (BEGIN IMMEDIATE): two students joining together get two numbers."""
        with self._lock, closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with closing(self._connect()) as db:
            return db.execute(sql, args).fetchall()

    # ---- the class ---------------------------------------------------------------------------------------------
    def start(self, lesson_id: str, teacher: str) -> str:
        """A new class for `lesson_id`, led by the session `teacher`; returns its join code."""
        for _ in range(50):
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            with self._transaction() as db:
                if db.execute("SELECT 1 FROM classes WHERE code=?", (code,)).fetchone():
                    continue
                db.execute("INSERT INTO classes VALUES (?,?,?,?,?,?)",
                           (code, lesson_id, teacher, STEPS[0], _now(), time.time()))
                return code
        raise RuntimeError("no free class code after 50 tries")

    def get(self, code: str) -> ClassInfo | None:
        rows = self._read("SELECT * FROM classes WHERE code=?", (normal_code(code),))
        return ClassInfo(**dict(rows[0])) if rows else None

    def require(self, code: str) -> ClassInfo:
        info = self.get(code)
        if info is None:
            raise LessonError(f"no class with the code '{normal_code(code)}': check the code on the teacher's screen")
        return info

    def classes_of(self, teacher: str) -> list[ClassInfo]:
        """The classes a session leads, newest first (the teacher's way back to a lesson)."""
        return [ClassInfo(**dict(r)) for r in
                self._read("SELECT * FROM classes WHERE teacher=? ORDER BY created_at DESC, rowid DESC", (teacher,))]

    def set_step(self, code: str, step: str, teacher: str) -> None:
        """The teacher moves the class on (or back); only the session that started the class may."""
        if step not in STEPS:
            raise LessonError(f"unknown step '{step}': use one of {', '.join(STEPS)}")
        with self._transaction() as db:
            n = db.execute("UPDATE classes SET step=?, step_at=? WHERE code=? AND teacher=?",
                           (step, time.time(), normal_code(code), teacher)).rowcount
        if not n:
            raise LessonError("only the teacher who started this class sets its pace")

    # ---- students ----------------------------------------------------------------------------------------------
    def join(self, code: str, session: str) -> Student:
        """The session joins the class (again: a refresh or a rejoin keeps its number and prediction)."""
        code = normal_code(code)
        with self._transaction() as db:
            info = db.execute("SELECT teacher FROM classes WHERE code=?", (code,)).fetchone()
            if info is None:
                raise LessonError(f"no class with the code '{code}': check the code on the teacher's screen")
            if info["teacher"] == session:
                raise LessonError("this session leads the class: students join from their own browser")
            row = db.execute("SELECT * FROM students WHERE code=? AND session=?", (code, session)).fetchone()
            if row is None:
                idx = db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM students WHERE code=?", (code,)).fetchone()[0]
                db.execute("INSERT INTO students (code, session, idx, joined_at) VALUES (?,?,?,?)",
                           (code, session, idx, _now()))
                row = db.execute("SELECT * FROM students WHERE code=? AND session=?", (code, session)).fetchone()
        return _student(row)

    def student(self, code: str, session: str) -> Student | None:
        rows = self._read("SELECT * FROM students WHERE code=? AND session=?", (normal_code(code), session))
        return _student(rows[0]) if rows else None

    def students(self, code: str) -> list[Student]:
        return [_student(r) for r in self._read("SELECT * FROM students WHERE code=? ORDER BY idx",
                                                (normal_code(code),))]

    def predict(self, code: str, session: str, value: Any) -> None:
        """Commit the student's prediction: once, before the reveal (a committed prediction is final)."""
        code = normal_code(code)
        with self._transaction() as db:
            step = db.execute("SELECT step FROM classes WHERE code=?", (code,)).fetchone()
            if step is None or step["step"] not in ("predict", "run"):
                raise LessonError("predictions are open once the teacher asks for them, until the reveal")
            n = db.execute("UPDATE students SET prediction=?, predicted_at=? WHERE code=? AND session=? AND "
                           "prediction IS NULL", (json.dumps(value), _now(), code, session)).rowcount
        if not n:
            raise LessonError("your prediction is already committed" if self.student(code, session)
                              else "join the class first")

    # ---- runs --------------------------------------------------------------------------------------------------
    def add_run(self, code: str, session: str, arm: str, job_id: str, config: dict) -> None:
        """The job queued for one of the student's arms (replacing a lost or failed one)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO class_runs (code, session, arm, job_id, status, config, submitted_at)"
                       " VALUES (?,?,?,?,?,?,?)",
                       (normal_code(code), session, arm, job_id, "queued", json.dumps(config), time.time()))

    def update_run(self, code: str, session: str, arm: str, **changes) -> None:
        allowed = {"run_id", "status", "test_acc", "healthy", "error", "finished_at"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"update_run takes {', '.join(sorted(allowed))}")
        sets = ", ".join(f"{k}=?" for k in changes)
        with self._transaction() as db:
            db.execute(f"UPDATE class_runs SET {sets} WHERE code=? AND session=? AND arm=?",
                       (*changes.values(), normal_code(code), session, arm))

    def runs(self, code: str, session: str | None = None) -> list[StudentRun]:
        sql, args = "SELECT * FROM class_runs WHERE code=?", [normal_code(code)]
        if session is not None:
            sql, args = sql + " AND session=?", [*args, session]
        return [_run(r) for r in self._read(sql + " ORDER BY submitted_at, rowid", tuple(args))]


def _student(row: sqlite3.Row) -> Student:
    prediction = json.loads(row["prediction"]) if row["prediction"] is not None else None
    return Student(row["session"], row["idx"], prediction, row["joined_at"] or "")


def _run(row: sqlite3.Row) -> StudentRun:
    d = dict(row)
    d.pop("code")
    d["config"] = json.loads(d["config"]) if d["config"] else None
    d["healthy"] = None if d["healthy"] is None else bool(d["healthy"])
    return StudentRun(**d)


def run_label(code: str, arm: str) -> str:
    """The job manager's label of a lesson run: how a job is recognised as this class's run of this arm."""
    return f"lesson:{normal_code(code)}:{arm}"


def sync_runs(classroom: Classroom, code: str, manager, store, session: str | None = None) -> int:
    """Bring the class's unfinished runs (one student's with `session`) up to date; returns how many changed.

    `manager` is the server's JobManager (not imported: any object with `snapshot(job_id)`), `store` its RunStore.
    A job is trusted only when its owner and label are this student's and this arm's (a restarted server numbers
    its jobs from 1 again). A job the manager no longer holds is read from the store by its run id; one that never
    started is "lost", and its student may run again.
    """
    changed = 0
    for run in classroom.runs(code, session):
        if run.done:
            continue
        job = manager.snapshot(run.job_id) if run.job_id else None
        if job is not None and (job.owner != run.session or job.label != run_label(code, run.arm)):
            job = None
        update: dict[str, Any] = {}
        if job is not None:
            state = str(job.state)
            if job.run_id and job.run_id != run.run_id:
                update["run_id"] = job.run_id
            if state != run.status:
                update["status"] = state
            if job.done:
                update.update(finished_at=time.time(), error=job.error)
                if state == "completed":
                    update.update(_result(job.summary))
        else:
            record = store.get_run(run.run_id) if run.run_id else None
            if record is None:
                update = {"status": LOST, "error": "the server restarted before this run trained: run it again",
                          "finished_at": time.time()}
            elif str(record["status"]) != run.status:
                status = str(record["status"])
                update = {"status": status, "error": record.get("error")}
                if status in DONE:
                    update["finished_at"] = time.time()
                if status == "completed":
                    update.update(_result(record["summary"]))
        if update:
            classroom.update_run(code, run.session, run.arm, **update)
            changed += 1
    return changed


def _result(summary) -> dict:
    """A finished run's number and whether it may be read as a result (tl_core.engine.health found nothing)."""
    acc = summary.get("test_acc")
    return {"test_acc": None if acc is None else float(acc), "healthy": not summary.get("health")}
