"""Guided lessons as data: a question, a prediction each student commits to, one run per student, the reveal.

Predict-observe-explain (White & Gunstone 1992): a student commits to a prediction before seeing the result, then
reconciles the two. A lesson is one TOML (or JSON) file in `assets/lessons/` (the built-in ones) or in the folder
$TL_LESSONS_DIR names (a teacher's own); docs/lessons.md gives the schema. `load_lessons()` reads and checks every
file, and a file that does not fit says which file, which key and what to write instead (`LessonError`).

The class is one experiment: student number `index` (their join order, from 0) runs every arm of the lesson with
the seed and setting `assignment(index)` gives them: with `vary = "seed"` each student gets their own seed; with
`vary = "labels_per_class"` (or another TrainConfig field) and `values = [...]`, the students take the values in
turn and repeat them with the next seed, so a class draws a whole curve with a spread at every point.

Nothing here trains or imports torch; the arms are TrainConfigs the job manager runs like any other.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tl_core.config import TrainConfig
from tl_core.errors import UserError

#: The built-in lessons, one file each.
LESSONS_DIR = Path(__file__).resolve().parents[1] / "assets" / "lessons"
ENV_DIR = "TL_LESSONS_DIR"  # a folder of the teacher's own lessons, read after the built-in ones
#: TrainConfig fields (a JSON object) put over every arm of every lesson: the tests' tiny runs, a slow machine.
ENV_CONFIG = "TL_LESSON_CONFIG"
SUFFIXES = (".toml", ".json")

#: What a student predicts. choice: one of the listed options wins (an arm, or a gap between two arms);
#: best: which of the lesson's values gives the best arm; gap: by how many points arm A beats arm B;
#: meet: at which of the lesson's values arm B catches up with arm A.
KINDS = ("choice", "best", "gap", "meet")
#: What may differ from one student to the next (besides the seed, which always does).
VARY_FIELDS = ("seed", "labels_per_class", "freeze_depth", "image_size")
#: The pace the teacher sets: students join, predict, run, and see the class's result beside their prediction.
STEPS = ("join", "predict", "run", "reveal")
TIE = "tie"
NEVER = "never"  # a "meet" prediction: not within the lesson's values
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}
_PER_STUDENT = {"seed"}  # set by the assignment, never by a lesson's arms


class LessonError(UserError):
    """A lesson file that cannot be used, said with its file and key."""


@dataclass(frozen=True)
class Arm:
    """One run each student makes: TrainConfig fields over the lesson's base."""

    name: str
    label: str
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """One answer of a choice: it wins when its arm's accuracy (or its gap, arm A minus arm B) is the highest."""

    name: str
    label: str
    arm: str | None = None
    gap: tuple[str, str] | None = None


@dataclass(frozen=True)
class Prediction:
    kind: str
    prompt: str
    options: tuple[Option, ...] = ()  # choice
    tie_points: float | None = None  # choice: "about the same" wins when the top two are this close (points)
    arms: tuple[str, ...] = ()  # best: (arm,); gap and meet: (A, B)
    low: float = 0.0  # gap: the slider's range and step, in points
    high: float = 50.0
    step: float = 1.0


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    setting: str  # one sentence: what the class trains on and with
    question: str
    protocol: str  # the fair protocol, in words
    why: str  # one sentence the reveal ends on
    prediction: Prediction
    base: dict
    arms: tuple[Arm, ...]
    vary: str = "seed"
    values: tuple = ()
    minutes: float | None = None  # the lesson's own estimate for a class, said to the teacher
    source: str = ""

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def assignment(self, index: int) -> dict:
        """What student `index` (join order, from 0) runs with: its seed, and its value of the varied field."""
        seed0 = int(self.base.get("seed", 0))
        if self.vary == "seed":
            return {"seed": seed0 + index}
        n = len(self.values)
        return {self.vary: self.values[index % n], "seed": seed0 + index // n}

    def configs(self, index: int) -> list[tuple[Arm, TrainConfig]]:
        """Every arm of student `index`, as the TrainConfig the job manager runs."""
        extra = env_overrides()  # never over what the class varies: the student's own seed and value
        return [(arm, TrainConfig.from_dict({**self.base, **arm.overrides, **extra, **self.assignment(index)}))
                for arm in self.arms]

    def value_of(self, config: dict) -> Any:
        """The varied value a run's config holds (None when only the seed varies)."""
        return None if self.vary == "seed" else config.get(self.vary)

    @property
    def axis_title(self) -> str:
        """The title of a chart axis over the varied setting's values."""
        return AXIS_TITLES.get(self.vary, self.vary.replace("_", " "))

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(name, label) of what a student may predict: the options (and the tie), or the lesson's values."""
        p = self.prediction
        if p.kind == "choice":
            return [(o.name, o.label) for o in p.options] + ([(TIE, "About the same")] if p.tie_points else [])
        values = [(str(v), value_text(self.vary, v)) for v in self.values]
        if p.kind == "meet":
            return values + [(NEVER, f"Not even at {value_text(self.vary, self.values[-1])}")]
        return values if p.kind == "best" else []

    def check_prediction(self, value: Any) -> Any:
        """The prediction as stored (an option's name, a value of the lesson, a number of points), or LessonError."""
        p = self.prediction
        if value is None:
            raise LessonError("pick your answer first, then commit it")
        if p.kind == "gap":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise LessonError(f"a prediction for '{self.id}' is a number of points, not {value!r}") from None
            if not p.low <= number <= p.high:
                raise LessonError(f"a prediction for '{self.id}' lies between {p.low:g} and {p.high:g} points")
            return number
        names = [name for name, _ in self.choices]
        if str(value) not in names:
            raise LessonError(f"'{value}' is not an answer of '{self.id}': use one of {', '.join(names)}")
        if p.kind in ("best", "meet") and str(value) != NEVER:
            return self.values[names.index(str(value))]
        return str(value)

    def steps(self) -> list[dict]:
        """The lesson step by step, as `python -m tl_core lessons --json` lists it."""
        p = self.prediction
        predict = {"step": "predict", "question": self.question, "prompt": p.prompt, "kind": p.kind}
        if p.kind == "gap":
            predict.update(low=p.low, high=p.high, every=p.step, unit="points", arms=list(p.arms))
        else:
            predict["choices"] = [{"name": n, "label": label} for n, label in self.choices]
        runs = [{"arm": a.name, "label": a.label, "config": {k: v for k, v in c.to_dict().items()
                                                               if k in {*self.base, *a.overrides, "seed", self.vary}}}
                for a, c in self.configs(0)]
        per_student = ("its own seed" if self.vary == "seed" else
                       f"its own {self.vary.replace('_', ' ')} ({', '.join(map(str, self.values))}, by join order; "
                       "the next seed once every value is taken)")
        return [
            {"step": "join", "text": "Students join with the class code; each gets a number in join order."},
            predict,
            {"step": "run", "protocol": self.protocol, "per_student": per_student, "runs": runs},
            {"step": "reveal", "text": "The class's result beside the predictions.", "why": self.why},
        ]

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "setting": self.setting, "question": self.question,
                "vary": self.vary, "values": list(self.values), "arms": [a.name for a in self.arms],
                "minutes": self.minutes, "source": self.source, "steps": self.steps()}


#: The chart axis of a varied setting: its values are the tick labels, short enough to stay level at half a projector.
AXIS_TITLES = {"labels_per_class": "labels per class", "freeze_depth": "freeze depth (blocks frozen)",
               "image_size": "image size (px)", "seed": "seed"}


def value_text(vary: str, value: Any) -> str:
    """"10 labels per class", "freeze depth 3": a varied value in the words a student reads."""
    words = {"labels_per_class": "labels per class", "freeze_depth": "freeze depth", "image_size": "px"}
    if vary == "freeze_depth":
        return f"freeze depth {value}"
    if vary == "image_size":
        return f"{value} px"
    return f"{value} {words.get(vary, vary.replace('_', ' '))}"


def env_overrides() -> dict:
    """$TL_LESSON_CONFIG: TrainConfig fields over every arm (a JSON object), checked like a lesson's own."""
    raw = os.environ.get(ENV_CONFIG, "").strip()
    if not raw:
        return {}
    try:
        extra = json.loads(raw)
    except json.JSONDecodeError as err:
        raise LessonError(f"${ENV_CONFIG} is not JSON ({err.msg}): write e.g. '{{\"image_size\": 32}}'") from None
    if not isinstance(extra, dict):
        raise LessonError(f"${ENV_CONFIG} must be a JSON object of TrainConfig fields")
    _check_fields(f"${ENV_CONFIG}", extra)
    return extra


# ---- reading a file -----------------------------------------------------------------------------------------------
def _check_fields(where: str, values: dict) -> None:
    unknown = sorted(set(values) - _CONFIG_FIELDS)
    if unknown:
        raise LessonError(f"{where}: unknown run setting(s) {', '.join(unknown)}: use TrainConfig's fields "
                          f"(data, backbone, mode, labels_per_class, image_size, pretrained, freeze_depth, ...)")


class _Reader:
    """Takes a parsed lesson file apart; every complaint names the file and the key."""

    def __init__(self, source: str, raw: dict):
        self.source, self.raw = source, raw

    def fail(self, key: str, message: str):
        raise LessonError(f"{self.source}: {key}: {message}")

    def text(self, table: dict, key: str, where: str = "", default: str | None = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}{key}", "missing or empty: write one sentence" if value is None
                      else f"must be text, not {type(value).__name__}")
        return " ".join(value.split())

    def table(self, key: str) -> dict:
        value = self.raw.get(key)
        if not isinstance(value, dict):
            self.fail(f"[{key}]", "missing: the lesson needs this table (docs/lessons.md)")
        return value

    def number(self, table: dict, key: str, where: str, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{where}{key}", f"must be a number, not {value!r}")
        return float(value)


def _arms(r: _Reader, run: dict) -> tuple[Arm, ...]:
    raw = run.get("arms")
    if not isinstance(raw, list) or not raw:
        r.fail("[[run.arms]]", "the lesson needs at least one arm (a run each student makes)")
    arms = []
    for i, a in enumerate(raw):
        where = f"run.arms[{i}]."
        if not isinstance(a, dict):
            r.fail(where[:-1], "must be a table with name, label and run settings")
        name = r.text(a, "name", where)
        if not _NAME.match(name):
            r.fail(f"{where}name", f"'{name}' must be lower-case letters, digits, - or _ (e.g. 'pretrained')")
        overrides = {k: v for k, v in a.items() if k not in ("name", "label")}
        _check_fields(f"{r.source}: {where[:-1]}", overrides)
        if _PER_STUDENT & set(overrides):
            r.fail(f"{where}seed", "each student's seed is set by the class: leave it out of the arms")
        arms.append(Arm(name, r.text(a, "label", where), overrides))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        r.fail("run.arms", f"two arms share a name: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    return tuple(arms)


def _vary(r: _Reader, run: dict) -> tuple[str, tuple]:
    vary = run.get("vary", "seed")
    if vary not in VARY_FIELDS:
        r.fail("run.vary", f"'{vary}' cannot vary per student: use one of {', '.join(VARY_FIELDS)}")
    values = run.get("values")
    if vary == "seed":
        if values is not None:
            r.fail("run.values", "only with vary = a setting (e.g. vary = \"labels_per_class\"); each seed is the "
                                 "student's own")
        return vary, ()
    if (not isinstance(values, list) or len(values) < 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)):
        r.fail("run.values", f"vary = \"{vary}\" needs a list of at least two whole numbers, e.g. [5, 10, 25, 50]")
    if len(set(values)) != len(values) or values != sorted(values):
        r.fail("run.values", "must increase, each value once")
    return vary, tuple(values)


def _prediction(r: _Reader, arms: tuple[Arm, ...], vary: str) -> Prediction:
    p = r.table("prediction")
    kind = p.get("kind")
    if kind not in KINDS:
        r.fail("prediction.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    prompt = r.text(p, "prompt", "prediction.")
    names = {a.name for a in arms}

    def arm_list(key: str, n: int) -> tuple[str, ...]:
        value = p.get(key)
        if not isinstance(value, list) or len(value) != n or not all(v in names for v in value):
            r.fail(f"prediction.{key}", f"name {n} arm(s) of [[run.arms]] ({', '.join(sorted(names))})")
        return tuple(value)

    if kind == "choice":
        raw = p.get("options")
        if not isinstance(raw, list) or len(raw) < 2:
            r.fail("prediction.options", "a choice needs at least two options, each with name, label and arm "
                                         "(or gap = [A, B])")
        options = []
        for i, o in enumerate(raw):
            where = f"prediction.options[{i}]."
            if not isinstance(o, dict):
                r.fail(where[:-1], "must be a table with name, label and arm or gap")
            name = r.text(o, "name", where)
            if not _NAME.match(name) or name == TIE:
                r.fail(f"{where}name", f"'{name}' must be lower-case letters, digits, - or _, and not '{TIE}'")
            arm, gap = o.get("arm"), o.get("gap")
            if (arm is None) == (gap is None):
                r.fail(where[:-1], "give exactly one of arm = \"NAME\" or gap = [\"A\", \"B\"]")
            if arm is not None and arm not in names:
                r.fail(f"{where}arm", f"'{arm}' is not an arm: use one of {', '.join(sorted(names))}")
            if gap is not None and (not isinstance(gap, list) or len(gap) != 2 or not set(gap) <= names):
                r.fail(f"{where}gap", f"name two arms, e.g. [\"{sorted(names)[0]}\", \"...\"]")
            options.append(Option(name, r.text(o, "label", where), arm, tuple(gap) if gap else None))
        if len({o.name for o in options}) != len(options):
            r.fail("prediction.options", "two options share a name")
        tie = p.get("tie_points")
        if tie is not None and (isinstance(tie, bool) or not isinstance(tie, (int, float)) or tie <= 0):
            r.fail("prediction.tie_points", "a positive number of points (or leave it out: no tie option)")
        return Prediction(kind, prompt, tuple(options), tie_points=float(tie) if tie else None)
    if kind in ("best", "meet") and vary == "seed":
        r.fail("prediction.kind", f"'{kind}' asks for one of the lesson's values: set run.vary and run.values")
    if kind == "best":
        return Prediction(kind, prompt, arms=arm_list("arms", 1))
    if kind == "meet":
        return Prediction(kind, prompt, arms=arm_list("arms", 2))
    low, high = r.number(p, "low", "prediction.", 0.0), r.number(p, "high", "prediction.", 50.0)
    step = r.number(p, "step", "prediction.", 1.0)
    if not low < high or step <= 0:
        r.fail("prediction.low", "needs low < high and a positive step")
    return Prediction(kind, prompt, arms=arm_list("arms", 2), low=low, high=high, step=step)


def parse_lesson(raw: dict, source: str, default_id: str) -> Lesson:
    """A lesson from a parsed file, every field checked; each arm's config is validated as a run would be."""
    if not isinstance(raw, dict):
        raise LessonError(f"{source}: the file must hold one table (a TOML document or a JSON object)")
    r = _Reader(source, raw)
    lesson_id = raw.get("id", default_id)
    if not isinstance(lesson_id, str) or not _NAME.match(lesson_id):
        r.fail("id", f"{lesson_id!r} must be lower-case letters, digits, - or _ (it goes in URLs)")
    run = r.table("run")
    base = run.get("base", {})
    if not isinstance(base, dict):
        r.fail("run.base", "must be a table of run settings")
    _check_fields(f"{source}: run.base", base)
    vary, values = _vary(r, run)
    arms = _arms(r, run)
    reveal = r.table("reveal")
    minutes = raw.get("minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0):
        r.fail("minutes", "a positive number (the class's minutes from Run to the reveal), or leave it out")
    lesson = Lesson(id=lesson_id, title=r.text(raw, "title"), setting=r.text(raw, "setting"),
                    question=r.text(raw, "question"), protocol=r.text(raw, "protocol"),
                    why=r.text(reveal, "why", "reveal."), prediction=_prediction(r, arms, vary), base=dict(base),
                    arms=arms, vary=vary, values=values, minutes=minutes, source=source)
    for index in range(max(1, len(values))):  # every arm at every value must be a run the engine accepts
        for arm, config in lesson.configs(index):
            try:
                config.validate()
            except UserError as err:
                r.fail(f"run.arms ({arm.name})", str(err))
    return lesson


def read_lesson(path: str | os.PathLike) -> Lesson:
    """One lesson file (.toml or .json)."""
    path = Path(path)
    source = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LessonError(f"{source}: cannot read it ({err})") from None
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LessonError(f"{source}: not valid TOML ({err})") from None
    except json.JSONDecodeError as err:
        raise LessonError(f"{source}: not valid JSON ({err.msg}, line {err.lineno})") from None
    return parse_lesson(raw, source, path.stem.replace(" ", "-").lower())


def _shown(path: Path) -> str:
    """The path as a teacher finds it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(LESSONS_DIR.parents[1]))
    except ValueError:
        return str(path)


def lesson_files(folders: list[Path] | None = None) -> list[Path]:
    if folders is None:
        folders = [LESSONS_DIR] + ([Path(os.environ[ENV_DIR])] if os.environ.get(ENV_DIR) else [])
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.iterdir())
            if p.suffix in SUFFIXES and not p.name.startswith(".")]


def load_lessons(folders: list[Path] | None = None) -> list[Lesson]:
    """Every lesson, built-in ones first; a bad file raises LessonError (a lesson is never quietly left out)."""
    lessons: list[Lesson] = []
    for path in lesson_files(folders):
        lesson = read_lesson(path)
        clash = next((other for other in lessons if other.id == lesson.id), None)
        if clash is not None:
            raise LessonError(f"{lesson.source}: id '{lesson.id}' is taken by {clash.source}: give it another id")
        lessons.append(lesson)
    return lessons


def get_lesson(lesson_id: str, folders: list[Path] | None = None) -> Lesson:
    for lesson in load_lessons(folders):
        if lesson.id == lesson_id:
            return lesson
    known = ", ".join(lesson.id for lesson in load_lessons(folders))
    raise LessonError(f"no lesson '{lesson_id}': use one of {known}")


def with_base(lesson: Lesson, **changes) -> Lesson:
    """The lesson with run settings changed for every arm (a smaller image for a slow machine, the tests)."""
    _check_fields("with_base", changes)
    return replace(lesson, base={**lesson.base, **changes})
