"""A lesson rehearsed without a class: N students' runs queued the way the Lesson page queues them (student by
student, every arm, through a job manager), recorded in a classroom of its own, and timed from the first Run to the
moment the reveal has every result. What a teacher checks on their machine before class, and the measurement in
docs/results.md.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tl_core.lessons import Lesson
from tl_core.runs import lesson_results as results
from tl_core.runs.classroom import Classroom, run_label, sync_runs

TEACHER = "0" * 16


def rehearse(lesson: Lesson, students: int, manager, store, poll_s: float = 0.2, timeout_s: float = 3600) -> dict:
    """Run a class of `students` on `manager` (a JobManager whose workers are ready) and `store` (its RunStore).

    Returns the seconds from the first run queued to the last run finished (`run_to_reveal_s`), each run's own
    seconds in the queue and training, the class's answer, and how many runs read their frozen activations from the
    shared cache."""
    with tempfile.TemporaryDirectory(prefix="tl_rehearsal_") as folder:
        room = Classroom(Path(folder) / "classroom.sqlite")
        code = room.start(lesson.id, TEACHER)
        room.set_step(code, "run", TEACHER)
        sessions = [f"{i + 1:016x}" for i in range(students)]
        start = time.perf_counter()
        for session in sessions:  # as the students click, one after the other
            me = room.join(code, session)
            for arm, config in lesson.configs(me.index):
                job_id = manager.submit(config, owner=session, label=run_label(code, arm.name))
                room.add_run(code, session, arm.name, job_id, config.to_dict())
        deadline = start + timeout_s
        while time.perf_counter() < deadline:
            sync_runs(room, code, manager, store)
            runs = room.runs(code)
            if all(r.done for r in runs):
                break
            time.sleep(poll_s)
        else:
            raise TimeoutError(f"the class's runs did not finish within {timeout_s:g} s")
        elapsed = time.perf_counter() - start
        found = results.answer(lesson, runs)
        caches = [store.get_run(r.run_id)["summary"].get("activation_cache") if r.run_id else None for r in runs]
        return {"lesson": lesson.id, "students": students, "runs": len(runs),
                "completed": sum(r.status == "completed" for r in runs), "counted": len(results.counted(runs)),
                "run_to_reveal_s": round(elapsed, 1),
                "run_s": sorted(round(r.finished_at - r.submitted_at, 1) for r in runs if r.finished_at),
                "cache_hits": sum(c == "hit" for c in caches),
                "answer": found.text if found else None, "answer_value": found.value if found else None}
