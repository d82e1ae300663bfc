"""The settings the pages share (the data, the split, the model, the hyperparameters): one registry, and the only
functions that read and write them.

Each `Setting` names its widget key, its default (TrainConfig's own default, as the widget shows it: "auto" for
None, 0 for "all labels"), what a valid value is, and whether it persists across a refresh.

Widgets lose their value when their page is not shown (Streamlit deletes the state of widgets that were not
rendered), so each page copies the values it draws into a kept copy (`keep`) and seeds its widgets from there
(`seed_widget`, `initial`): switching pages loses nothing. A refresh or the session URL opened elsewhere starts a
new Streamlit session, so every persisting value is also written to the server (`tl_core.runs.sessions`) and
read back on the first run of a new session (`restore_session`), before any widget is drawn. A value that fails
its setting's check (a stale or edited session file) reads as the default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any, Callable

import streamlit as st

from tl_core.config import BUDGETS, MODES, RECIPES, SHIFTS, TrainConfig
from ui.services import sessions
from ui.session_id import owner

_log = logging.getLogger(__name__)
_KEPT = "_kept"  # session-state key of the kept copy: {setting key: value}
_MISSING = object()

AUTO = "auto"
NO_RECIPE = "none"
LEARNING_RATES = [AUTO, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
BATCH_SIZES = [8, 16, 32, 64, 128]
BUDGET_CHOICES = [AUTO, *BUDGETS]
RECIPE_CHOICES = [NO_RECIPE, *RECIPES]
MAX_EPOCHS = 200
MAX_IMAGE_SIZE = 512
MAX_TOKENS = 512


@dataclass(frozen=True)
class Setting:
    key: str  # the widget's key and the name in the session's file
    default: Any = None
    valid: Callable[[Any], bool] = lambda value: True
    persists: bool = True  # written to the server and restored after a refresh
    default_from: Callable[[], Any] | None = None  # a default another module owns (read when first needed)

    def initial(self) -> Any:
        return self.default_from() if self.default_from is not None else self.default

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.valid(value))
        except (TypeError, ValueError):
            return False


def _whole(low: int = 0, high: int | None = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _one_of(options) -> Callable[[Any], bool]:
    return lambda v: not isinstance(v, bool) and v in options


def _kind(kind: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, kind)


def _rank_per_class() -> int:
    from tl_core.engine.ranking import DEFAULT_PER_CLASS  # imports torch: only when the ranking view asks

    return DEFAULT_PER_CLASS


_CONFIG = {f.name: f.default for f in fields(TrainConfig)}

SETTINGS: dict[str, Setting] = {s.key: s for s in (
    # the data and its split (Data page)
    Setting("data_source", _CONFIG["data"], _kind(str)),  # builtin:NAME or "upload"
    Setting("text_column", _CONFIG["text_column"] or "", _kind(str)),  # "": detected
    Setting("label_column", _CONFIG["label_column"] or "", _kind(str)),
    Setting("labels_per_class", _CONFIG["labels_per_class"] or 0, _whole(0)),  # 0: all
    Setting("val_per_class", _CONFIG["val_per_class"], _whole(1)),
    Setting("test_per_class", _CONFIG["test_per_class"], _whole(1)),
    Setting("seed", _CONFIG["seed"], _whole(0)),
    # the model (Model page)
    Setting("backbone", _CONFIG["backbone"], _kind(str)),
    Setting("mode", _CONFIG["mode"], _one_of(MODES)),
    Setting("freeze_depth", _CONFIG["freeze_depth"], _optional(_whole(0))),  # None: half the blocks
    Setting("random_init", not _CONFIG["pretrained"], _kind(bool)),
    Setting("lp_ft", _CONFIG["lp_ft"], _kind(bool)),
    Setting("recipe", _CONFIG["recipe"] or NO_RECIPE, _one_of(RECIPE_CHOICES)),
    Setting("surgical_block", _CONFIG["surgical_block"], _optional(_whole(0))),  # None: the last block
    # the hyperparameters and the fair comparison (Model page)
    Setting("epochs", _CONFIG["epochs"], _whole(1, MAX_EPOCHS)),
    Setting("lr", AUTO if _CONFIG["lr"] is None else _CONFIG["lr"], _one_of(LEARNING_RATES)),
    Setting("batch_size", _CONFIG["batch_size"], _one_of(BATCH_SIZES)),
    Setting("image_size", _CONFIG["image_size"], _optional(_whole(8, MAX_IMAGE_SIZE))),  # None: auto
    Setting("max_length", _CONFIG["max_length"], _whole(8, MAX_TOKENS)),
    Setting("augment", _CONFIG["augment"], _kind(bool)),
    Setting("budget", _CONFIG["budget"] or AUTO, _one_of(BUDGET_CHOICES)),
    Setting("ood_shift", _CONFIG["ood_shift"], _one_of(SHIFTS)),
    # the backbone ranking (Model page) and the labels-per-class sweep (Compare page)
    Setting("rank_random", False, _kind(bool)),
    Setting("rank_per_class", valid=_whole(0), default_from=_rank_per_class),
    Setting("efficiency_seeds", 3, _whole(1, 5), persists=False),
    Setting("imagenet_seeds", 3, _whole(1, 5), persists=False),  # the Model page's ImageNet check
)}


def setting(key: str) -> Setting:
    try:
        return SETTINGS[key]
    except KeyError:
        raise KeyError(f"{key!r} is not a setting: add it to ui.settings.SETTINGS") from None


def default(key: str) -> Any:
    return setting(key).initial()


# ---- the kept copy and the session's file ------------------------------------------------------------------------
def restore_session() -> None:
    """On the first run of a new browser session (a refresh, a second tab, the URL on another machine): bring
    back the session's kept settings before any widget is drawn. Only known, valid, persisting settings come
    back. The upload comes back on first use (`ui.uploads.restore_upload`), as reading it costs a second."""
    ss = st.session_state
    if _KEPT in ss:
        return
    try:
        stored = dict(sessions().load(owner()).settings)
    except (OSError, ValueError) as err:
        _log.warning("could not restore session %s: %s", owner(), err)
        stored = {}
    ss[_KEPT] = {key: value for key, value in stored.items()
                 if key in SETTINGS and SETTINGS[key].persists and SETTINGS[key].accepts(value)}


def _kept() -> dict:
    return st.session_state.setdefault(_KEPT, {})


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _persist(changes: dict) -> None:
    """Write changed settings to the session's file (only those: another tab's other changes stay)."""
    if not changes:
        return
    try:
        sessions().update_settings(owner(), changes)
    except (OSError, ValueError) as err:  # a full disk must not break the page; the setting still holds here
        _log.warning("could not save settings of session %s: %s", owner(), err)


def _remember(key: str, value: Any) -> dict:
    """Keep `value` for `key`; returns {key: value} when the session's file must learn it, else {}."""
    changed = not _same(_kept().get(key, _MISSING), value)
    _kept()[key] = value
    return {key: value} if changed and setting(key).persists else {}


# ---- reading and writing ----------------------------------------------------------------------------------------
def _passes(s: Setting, value: Any, valid: Callable[[Any], bool] | None) -> bool:
    """`value` is present, its setting accepts it, and so does the page's own check (options of the moment)."""
    if value is _MISSING or not s.accepts(value):
        return False
    try:
        return valid is None or bool(valid(value))
    except (TypeError, ValueError):
        return False


def _current(key: str) -> Any:
    """The widget's value if it was drawn this run, else the kept copy, else the default (unchecked)."""
    if key in st.session_state:
        return st.session_state[key]
    return _kept().get(key, _MISSING)


def get(key: str) -> Any:
    """The current value of a shared setting (its widget's value if drawn this run, else the kept copy); a value
    its setting rejects reads as the default."""
    s = setting(key)
    value = _current(key)
    return value if _passes(s, value, None) else s.initial()


def seed_widget(key: str, default: Any = None, valid: Callable[[Any], bool] | None = None) -> Any:
    """Before drawing the widget `key`: give it the kept value (or the default) if it has none; returns its value,
    which the page also passes as the widget's own default (`index=`, `value=`).

    `valid(value)` may reject a stale value (an option that no longer exists), which then falls back
    to `default` (the setting's own default if None).

    The widget's own default matters: a browser that loses a widget's state (a page switch or a rerun that cut
    a script run short, streamlit/streamlit#7338) shows and sends the widget's default, and a selectbox or radio
    without `index=` defaults to its first option, a slider or number input without `value=` to its minimum.
    With the seeded value as its default, such a browser sends what the page showed.
    """
    s = setting(key)
    fallback = s.initial() if default is None else default
    ss = st.session_state
    if key not in ss:
        ss[key] = _kept().get(key, fallback)
    if not _passes(s, ss[key], valid):
        ss[key] = fallback
    return ss[key]


def initial(key: str, default: Any = None, valid: Callable[[Any], bool] | None = None) -> Any:
    """The `value=` for a widget that is not drawn on every run (after an `st.stop()`, inside an `if`).

    Streamlit forgets such a widget's state while it is hidden, and a browser that gets it back shows the
    widget's own default, not a value put in Session State before drawing it (seen with Streamlit 1.67).
    Passing the kept value as the widget's default avoids both.
    """
    s = setting(key)
    fallback = s.initial() if default is None else default
    value = _current(key)
    return value if _passes(s, value, valid) else fallback


def keep(*keys: str) -> None:
    """After drawing widgets: remember their values for the other pages, the next visit and the next session."""
    changes = {}
    for key in keys:
        setting(key)
        if key in st.session_state:
            changes.update(_remember(key, st.session_state[key]))
    _persist(changes)


def moved(key: str) -> bool:
    """In widget `key`'s on_change callback: whether its value differs from the kept copy, the value the page last
    drew. Streamlit also calls on_change when a browser sends back a widget of a page it has left (a page switch
    while a script run was cut short: streamlit/streamlit#8827); that call carries the value the page already
    showed, so it is nobody's move, and a callback that changes other settings must not act on it."""
    kept = _kept().get(key, _MISSING)
    return kept is _MISSING or not _same(st.session_state.get(key, _MISSING), kept)


def put(key: str, value: Any) -> None:
    """From a widget's callback: give the widget `key` a new value and keep it (a recipe sets the mode it needs)."""
    setting(key)
    st.session_state[key] = value
    _persist(_remember(key, value))
