"""`lessons`: the guided lessons this machine offers (assets/lessons/ and $TL_LESSONS_DIR), step by step, and a
rehearsal of one for a class of N on this machine (`--rehearse ID --students N`: the time from Run to the reveal).

A lesson file that does not fit the schema (docs/lessons.md) ends the command with its file, its key and what to
write instead, exit 2, like every other bad input.
"""

from __future__ import annotations

import json
import os


def add_lessons_command(sub) -> None:
    p = sub.add_parser("lessons", help="list the guided lessons with their steps (the Lesson page runs them), or "
                                       "rehearse one for a class")
    p.add_argument("--json", action="store_true",
                   help="every lesson with its steps and runs (or the rehearsal) as JSON")
    p.add_argument("--rehearse", metavar="ID", help="run lesson ID for a class of --students, as the Lesson page "
                                                    "would, and time it from Run to the reveal")
    p.add_argument("--students", type=int, default=10, help="the rehearsal's class size (default 10)")
    p.add_argument("--store", help="the run store the rehearsal records in (default: $TL_DATA_DIR's)")
    p.set_defaults(func=cmd_lessons)


def cmd_lessons(args) -> int:
    from tl_core.lessons import load_lessons

    lessons = load_lessons()
    if args.rehearse:
        return _rehearse(args)
    if args.json:
        print(json.dumps([lesson.to_dict() for lesson in lessons], indent=2))
        return 0
    for lesson in lessons:
        arms = ", ".join(a.label for a in lesson.arms)
        per = "its own seed" if lesson.vary == "seed" else f"{lesson.vary} in {list(lesson.values)}"
        minutes = f" · about {lesson.minutes:g} min for a class of thirty" if lesson.minutes else ""
        print(f"{lesson.id:16} {lesson.title}\n{'':16} predict ({lesson.prediction.kind}): {lesson.prediction.prompt}"
              f"\n{'':16} each student runs: {arms} ({per}){minutes}")
    return 0


def _rehearse(args) -> int:
    """The class's runs on this machine's worker processes ($TL_RUNNER, default local; $TL_MAX_CONCURRENT_RUNS at
    once, default 2), as a server runs them."""
    from tl_core.cli.common import fail, open_store
    from tl_core.lessons import get_lesson
    from tl_core.runs.jobs import JobManager
    from tl_core.runs.lesson_rehearsal import rehearse

    if args.students < 1:
        return fail("--students must be at least 1")
    lesson = get_lesson(args.rehearse)
    slots = max(1, int(os.environ.get("TL_MAX_CONCURRENT_RUNS", "2") or 2))
    store = open_store(args)
    manager = JobManager(store, max_concurrent=slots, runner=None)
    try:
        wait_ready = getattr(manager.runner, "wait_ready", None)
        if wait_ready is not None:
            wait_ready()  # the workers warm up as a server's do before its first click
        out = rehearse(lesson, args.students, manager, store)
    finally:
        manager.shutdown()
    out["concurrent_runs"] = slots
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{lesson.title}: {out['students']} students, {out['runs']} runs ({out['completed']} completed, "
              f"{out['cache_hits']} from the shared cache), {slots} at once: {out['run_to_reveal_s']} s from the "
              f"first Run to the reveal.\n{out['answer'] or 'no answer: no run counted'}")
    return 0
