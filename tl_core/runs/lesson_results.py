"""What a class measured in a lesson: each arm's test accuracy over the students (mean and spread), the answer to
the lesson's question in the terms of its prediction, the room's predictions counted, and the table a teacher
downloads. Pure: reads Lesson, Student and StudentRun values, never a database or a page.

Only completed, healthy runs count (tl_core.engine.health: a run stuck at chance or predicting one class is not a
result); the answer says how many runs were left out and why.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tl_core.lessons import NEVER, TIE, Lesson, value_text
from tl_core.runs.classroom import Student, StudentRun


@dataclass(frozen=True)
class ArmStat:
    """One arm at one value (or over every seed): its students' test accuracies."""

    arm: str
    label: str
    value: Any
    accs: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.accs)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accs)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accs) if self.n > 1 else 0.0


@dataclass(frozen=True)
class Answer:
    """The class's answer to the lesson's question: `value` is what a prediction is compared with (an option's
    name or TIE, one of the lesson's values or NEVER, or a number of points for a gap)."""

    kind: str
    value: Any
    text: str
    n: int  # students whose runs stand behind it
    spread: float | None = None  # gap: the standard deviation of the students' own gaps, in points
    scores: dict = field(default_factory=dict)  # choice: option -> points; best, meet: value -> points per arm
    left_out: int = 0  # finished runs that do not count (failed, unhealthy)


def counted(runs: list[StudentRun]) -> list[StudentRun]:
    """The runs that are results: completed, with a test accuracy, healthy."""
    return [r for r in runs if r.status == "completed" and r.test_acc is not None and r.healthy is not False]


def arm_stats(lesson: Lesson, runs: list[StudentRun]) -> list[ArmStat]:
    """Every arm (in the lesson's order) at every value that has a result (in increasing order)."""
    groups: dict[tuple[str, Any], list[float]] = {}
    for r in counted(runs):
        groups.setdefault((r.arm, lesson.value_of(r.config or {})), []).append(r.test_acc)
    order = {a.name: i for i, a in enumerate(lesson.arms)}
    keys = sorted((k for k in groups if k[0] in order), key=lambda k: (order[k[0]], -1 if k[1] is None else k[1]))
    return [ArmStat(arm, lesson.arm(arm).label, value, tuple(groups[(arm, value)])) for arm, value in keys]


def _by_student(lesson: Lesson, runs: list[StudentRun]) -> dict[str, dict[str, StudentRun]]:
    table: dict[str, dict[str, StudentRun]] = {}
    for r in counted(runs):
        table.setdefault(r.session, {})[r.arm] = r
    return table


def _gaps(lesson: Lesson, runs: list[StudentRun], a: str, b: str) -> list[float]:
    """Each student's own gap, arm `a` minus arm `b`, in points (the same split on both sides)."""
    return [100 * (arms[a].test_acc - arms[b].test_acc) for arms in _by_student(lesson, runs).values()
            if a in arms and b in arms]


def _pm(mean: float, spread: float, n: int) -> str:
    return f"{mean:+.0f}" + (f" \u00b1 {spread:.0f}" if n > 1 else "")


def _students(n: int) -> str:
    return f"{n} student{'s' if n != 1 else ''}"


def answer(lesson: Lesson, runs: list[StudentRun]) -> Answer | None:
    """The class's answer from the runs so far; None until a run that counts has finished for every arm needed."""
    left_out = sum(1 for r in runs if r.done and r not in counted(runs) and r.status != "lost")
    kind = lesson.prediction.kind
    found = {"choice": _choice, "gap": _gap, "best": _best, "meet": _meet}[kind](lesson, runs)
    if found is None:
        return None
    if left_out:
        found = Answer(found.kind, found.value, found.text + f" ({left_out} run{'s' if left_out != 1 else ''} failed "
                       "or unhealthy, not counted)", found.n, found.spread, found.scores, left_out)
    return found


def _gap(lesson: Lesson, runs: list[StudentRun]) -> Answer | None:
    a, b = lesson.prediction.arms
    gaps = _gaps(lesson, runs, a, b)
    if not gaps:
        return None
    mean = statistics.fmean(gaps)
    spread = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
    text = (f"{lesson.arm(a).label} minus {lesson.arm(b).label}: {_pm(mean, spread, len(gaps))} points of test "
            f"accuracy (mean" + (" \u00b1 std" if len(gaps) > 1 else "") + f" over {_students(len(gaps))}).")
    return Answer("gap", round(mean, 1), text, len(gaps), spread)


def _choice(lesson: Lesson, runs: list[StudentRun]) -> Answer | None:
    p = lesson.prediction
    scores: dict[str, float] = {}
    ns = []
    for o in p.options:
        points = _gaps(lesson, runs, *o.gap) if o.gap is not None else \
            [100 * r.test_acc for r in counted(runs) if r.arm == o.arm]
        if points:
            scores[o.name] = statistics.fmean(points)
            ns.append(len(points))
    if len(scores) < len(p.options):
        return None
    ranked = sorted(p.options, key=lambda o: scores[o.name], reverse=True)
    top, second = ranked[0], ranked[1]
    value = TIE if p.tie_points and scores[top.name] - scores[second.name] < p.tie_points else top.name
    parts = ", ".join(f"{o.label.lower()}: {scores[o.name]:+.0f} points" if o.gap else
                      f"{o.label.lower()}: {scores[o.name]:.0f}%" for o in p.options)
    verdict = (f"about the same (the top two within {p.tie_points:g} points)" if value == TIE
               else f"\u201c{top.label}\u201d")
    return Answer("choice", value, f"{parts[0].upper()}{parts[1:]}; the class's answer: {verdict} "
                                   f"(over {_students(min(ns))}).", min(ns), scores=scores)


def _best(lesson: Lesson, runs: list[StudentRun]) -> Answer | None:
    (arm,) = lesson.prediction.arms
    stats = [s for s in arm_stats(lesson, runs) if s.arm == arm]
    if not stats:
        return None
    ranked = sorted(stats, key=lambda s: s.mean, reverse=True)
    best = ranked[0]
    text = f"{value_text(lesson.vary, best.value).capitalize()} is best: {100 * best.mean:.0f}%"
    text += f" \u00b1 {100 * best.std:.0f} over {_students(best.n)}" if best.n > 1 else " (one student)"
    if len(ranked) > 1:
        runner = ranked[1]
        close = best.mean - runner.mean <= max(best.std, runner.std)
        text += (f"; {value_text(lesson.vary, runner.value)} follows at {100 * runner.mean:.0f}%"
                 + (", within the seeds' spread: the class cannot tell these two apart" if close else ""))
    missing = [v for v in lesson.values if v not in {s.value for s in stats}]
    if missing:
        text += f"; no result yet at {', '.join(value_text(lesson.vary, v) for v in missing)}"
    return Answer("best", best.value, text + ".", sum(s.n for s in stats),
                  scores={s.value: {arm: 100 * s.mean} for s in stats})


def _meet(lesson: Lesson, runs: list[StudentRun]) -> Answer | None:
    a, b = lesson.prediction.arms
    stats = {(s.arm, s.value): s for s in arm_stats(lesson, runs)}
    both = [v for v in lesson.values if (a, v) in stats and (b, v) in stats]
    if not both:
        return None
    scores = {v: {a: 100 * stats[(a, v)].mean, b: 100 * stats[(b, v)].mean} for v in both}
    met = next((v for v in both if scores[v][b] >= scores[v][a]), None)
    la, lb = lesson.arm(a).label, lesson.arm(b).label
    if met is None:
        value = NEVER
        text = f"{lb} stays below {la} up to {value_text(lesson.vary, both[-1])}"
    else:
        value = met
        text = (f"{lb} reaches {la} at {value_text(lesson.vary, met)} ({scores[met][b]:.0f}% against "
                f"{scores[met][a]:.0f}%)" + (", the fewest the class tried" if met == lesson.values[0] else ""))
    missing = [v for v in lesson.values if v not in both]
    if missing:
        text += f"; no result yet at {', '.join(value_text(lesson.vary, v) for v in missing)}"
    n = len({r.session for r in counted(runs)})
    return Answer("meet", value, text + f" (means over {_students(n)}).", n, scores=scores)


# ---- predictions ---------------------------------------------------------------------------------------------------
def prediction_counts(lesson: Lesson, students: list[Student]) -> list[tuple[str, str, int]]:
    """(name, label, how many predicted it) for every answer a student could give, in the lesson's order; for a
    gap, one entry per slider step from low to high."""
    made = [s.prediction for s in students if s.prediction is not None]
    p = lesson.prediction
    if p.kind == "gap":
        steps = int(round((p.high - p.low) / p.step))
        counts = Counter(round((float(v) - p.low) / p.step) for v in made)
        return [(f"{p.low + i * p.step:g}", f"{p.low + i * p.step:+g}", counts.get(i, 0)) for i in range(steps + 1)]
    counts = Counter(str(v) for v in made)
    return [(name, label, counts.get(name, 0)) for name, label in lesson.choices]


def prediction_text(lesson: Lesson, value: Any) -> str:
    """A prediction in words: "+20 points", "10 labels per class", "On the animals"."""
    if value is None:
        return "no prediction"
    if lesson.prediction.kind == "gap":
        return f"{float(value):+g} points"
    return dict(lesson.choices).get(str(value), str(value))


def is_right(lesson: Lesson, prediction: Any, found: Answer | None) -> bool | None:
    """Whether a prediction matches the class's answer (a gap: within one slider step); None without either."""
    if prediction is None or found is None:
        return None
    if lesson.prediction.kind == "gap":
        return abs(float(prediction) - float(found.value)) <= lesson.prediction.step
    return str(prediction) == str(found.value)


def verdict(lesson: Lesson, prediction: Any, found: Answer | None) -> str:
    """One line for a student at the reveal: their prediction beside what the class measured."""
    if found is None:
        return "The class's result is not in yet."
    mine = prediction_text(lesson, prediction)
    measured = prediction_text(lesson, found.value)
    right = is_right(lesson, prediction, found)
    if right is None:
        return f"You made no prediction; the class measured {measured}."
    if lesson.prediction.kind == "gap":
        off = float(prediction) - float(found.value)
        return (f"You predicted {mine}; the class measured {measured}: "
                + ("right on." if right else f"{abs(off):.0f} points too {'high' if off > 0 else 'low'}."))
    return f"You predicted \u201c{mine}\u201d; the class measured \u201c{measured}\u201d: " + \
        ("right." if right else "not this time: what did you expect, and why did it go the other way?")


def right_count(lesson: Lesson, students: list[Student], found: Answer | None) -> tuple[int, int]:
    """(predictions that match the answer, predictions made)."""
    made = [s for s in students if s.prediction is not None]
    return sum(bool(is_right(lesson, s.prediction, found)) for s in made), len(made)


# ---- the table ---------------------------------------------------------------------------------------------------
TABLE_COLUMNS = ["student", "seed", "setting", "prediction", "arm", "status", "test_acc", "counted", "run_id",
                 "seconds"]


def class_table(lesson: Lesson, students: list[Student], runs: list[StudentRun]) -> list[dict]:
    """One row per student and arm (a student without runs: one row with their prediction), for the CSV."""
    ok = {(r.session, r.arm) for r in counted(runs)}
    by_session: dict[str, list[StudentRun]] = {}
    for r in runs:
        by_session.setdefault(r.session, []).append(r)
    rows = []
    for s in students:
        given = lesson.assignment(s.index)
        base = {"student": s.number, "seed": given["seed"],
                "setting": value_text(lesson.vary, given[lesson.vary]) if lesson.vary != "seed" else "",
                "prediction": prediction_text(lesson, s.prediction) if s.prediction is not None else ""}
        mine = by_session.get(s.session) or [None]
        for r in mine:
            seconds = (r.finished_at - r.submitted_at) if r and r.finished_at and r.submitted_at else None
            rows.append({**base, "arm": r.arm if r else "", "status": r.status if r else "",
                         "test_acc": r.test_acc if r else None, "counted": bool(r and (r.session, r.arm) in ok),
                         "run_id": (r.run_id or "") if r else "",
                         "seconds": None if seconds is None else round(seconds, 1)})
    return rows


def run_progress(lesson: Lesson, students: list[Student], runs: list[StudentRun]) -> dict:
    """How far the class is: students, predictions made, runs expected (every arm of every student who started),
    finished and counted, and the seconds from the first run queued to the last one finished."""
    started = {r.session for r in runs}
    done = [r for r in runs if r.done]
    submitted = [r.submitted_at for r in runs if r.submitted_at]
    finished = [r.finished_at for r in done if r.finished_at]
    return {"students": len(students), "predicted": sum(s.prediction is not None for s in students),
            "started": len(started), "runs": len(runs), "expected": len(started) * len(lesson.arms),
            "done": len(done), "counted": len(counted(runs)),
            "seconds": (max(finished) - min(submitted)) if submitted and finished and len(done) == len(runs) else None}
