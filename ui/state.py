"""Session state, process-wide singletons and the settings every page shares.

Widgets lose their value when their page is not shown (Streamlit deletes the
state of widgets that were not rendered), so each page copies the values it
draws into `st.session_state["_kept"]` and seeds its widgets from there:
switching pages loses nothing. A refresh or the session URL opened elsewhere
starts a new Streamlit session, so every kept value and the accepted upload are
also written to the server (`tl_core.runs.sessions`) and read back on the first run
of a new session, before any widget is drawn. Nothing here imports torch at import time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import streamlit as st

from tl_core.config import RECIPES, Mode, TrainConfig, default_lr
from tl_core.engine.plan import RunPlan, plan_run
from tl_core.errors import UserError
from tl_core.runs.jobs import JobManager
from tl_core.runs.sessions import SESSION_ID_RE, SessionStore
from tl_core.runs.store import RunStore, default_root

POLL_S = 0.5
OWNER_RE = SESSION_ID_RE
_log = logging.getLogger(__name__)
DEFAULT_DATA = "builtin:animals"
UPLOAD = "upload"
DEFAULT_BACKBONE = {"image": "mobilenet_v2", "text": "all-MiniLM-L6-v2"}
FAMILY = {"image": "vision", "text": "text"}

#: Settings shared by the pages, with their defaults (None = "auto", decided by the engine).
DEFAULTS: dict[str, Any] = {
    "data_source": DEFAULT_DATA,
    "text_column": "",
    "label_column": "",
    "labels_per_class": 0,  # 0 = all
    "val_per_class": 20,
    "test_per_class": 50,
    "seed": 0,
    "backbone": "mobilenet_v2",
    "mode": "frozen",
    "freeze_depth": None,  # None -> half the blocks, set when the backbone is known
    "random_init": False,
    "epochs": 10,
    "lr": "auto",
    "batch_size": 32,
    "image_size": None,
    "max_length": 64,
    "augment": False,
    "lp_ft": False,
    "recipe": "none",  # a preset from tl_core.engine.recipes (ui/recipes_view.py), "none" for plain settings
    "surgical_block": None,  # recipe "surgical": the block it tunes (None -> the last block)
    "budget": "auto",  # auto: to convergence from scratch, the epochs set otherwise
    "ood_shift": "blur",
}


# ---- process-wide singletons -------------------------------------------------------------
def data_root() -> str:
    return str(default_root())


@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return RunStore(os.path.join(root, "runs.sqlite"))


@st.cache_resource(show_spinner=False)
def _manager(root: str, max_concurrent: int) -> JobManager:
    manager = JobManager(_store(root), max_concurrent=max_concurrent, runner=None)  # $TL_RUNNER, default local
    _cancel_at_exit(manager)
    return manager


def _cancel_at_exit(manager: JobManager) -> None:
    """Stopping the server must not wait for every training run to finish: cancel them first.

    concurrent.futures joins its workers in a threading-atexit hook; hooks run in
    reverse order of registration, so this one (registered later) runs before that join.
    """
    def cancel_all() -> None:
        for job in manager.jobs():
            manager.cancel(job.job_id)

    _at_exit(cancel_all)


def _at_exit(hook) -> None:
    """Run `hook` at interpreter exit before non-daemon threads are joined (the hook concurrent.futures uses)."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(hook)
        except RuntimeError:  # interpreter already shutting down
            pass


def store() -> RunStore:
    return _store(data_root())


@st.cache_resource(show_spinner=False)
def _sessions(root: str) -> SessionStore:
    return SessionStore(os.path.join(root, "sessions"))


def sessions() -> SessionStore:
    return _sessions(data_root())


def max_concurrent() -> int:
    try:
        return max(1, int(os.environ.get("TL_MAX_CONCURRENT_RUNS", "2")))
    except ValueError:
        return 2


def manager() -> JobManager:
    return _manager(data_root(), max_concurrent())


@st.cache_resource(show_spinner=False)
def builtins_info() -> list[dict]:
    from tl_core.inputs import data

    return data.list_builtins()


def builtin_info(name: str) -> dict | None:
    return next((b for b in builtins_info() if b["name"] == name), None)


#: One description at a time: the first text backbone imports transformers, and the background warm-up importing
#: it while a page did too failed with "cannot import name 'AutoConfig' from 'transformers'" (a half-built module).
_describe_lock = threading.Lock()


@st.cache_resource(show_spinner=False, max_entries=64)
def describe(name: str) -> dict:
    from tl_core.models import backbones

    with _describe_lock:
        return backbones.describe(name)


def backbone_names(family: str) -> list[str]:
    from tl_core.models import backbones

    return backbones.list_names(family)


@st.cache_resource(show_spinner=False)
def device_text() -> str:
    from tl_core.device import describe as describe_device
    from tl_core.device import pick_device

    return describe_device(pick_device("auto"))


_warm_lock = threading.Lock()
_warmed = False


def warm_demo() -> None:
    """Once per process: import the vision stack, decode the demo's data, read its weights, run one forward pass.

    The launcher (`python -m ui.launch`) calls it before the server listens, so a page that answers is warm;
    under a plain `streamlit run` the background warm-up below does it instead.
    """
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        try:
            from tl_core.runs import demo

            demo.warm_up(trains_here=manager().runner.name == "thread")
        except Exception as err:  # only a warm-up: the first run reports real problems itself
            _log.warning("demo warm-up failed: %s", err)
        _warmed = True


@st.cache_resource(show_spinner=False)
def start_warmup() -> threading.Thread:
    """Once per process, in the background: import the training engine, load the demo's data and weights,
    describe every backbone, so the first click (the classroom demo) and the Model page start at once.

    Pure tl_core calls (functools caches), no st.* in the thread. Describing waits while anything trains:
    a warm-up must never slow a run down. Not a daemon: a daemon thread stopped inside torch at exit aborts
    the process, so shutdown sets `stop` and waits for the step in hand.
    """
    from tl_core.models import backbones  # noqa: F401  imported on the script thread, before the thread starts
    from tl_core.runs import demo  # noqa: F401
    from tl_core.engine import training  # noqa: F401

    jobs, stop = manager(), threading.Event()

    def work() -> None:
        warm_demo()
        try:  # the Inspect page's first visit waited seconds for these
            import sklearn.decomposition  # noqa: F401
            import sklearn.model_selection  # noqa: F401
            import sklearn.neighbors  # noqa: F401
        except ImportError:
            pass
        try:  # the demo's frozen activations into the shared cache, between runs only: it yields to any run
            if jobs.runner.name == "thread":  # worker processes fill it themselves as they warm up (processes.py)
                while jobs.active_count() and not stop.is_set():
                    time.sleep(0.5)
                demo.fill_demo_cache(stop=lambda: stop.is_set() or bool(jobs.active_count()))
        except Exception as err:  # only a warm-up: a run computes what is missing itself
            _log.warning("filling the demo's activation cache failed: %s", err)
        for family in ("vision", "text"):
            for name in backbones.list_names(family):
                while jobs.active_count() and not stop.is_set():
                    time.sleep(0.5)
                if stop.is_set():
                    return
                try:
                    with _describe_lock:
                        backbones.describe(name)
                except Exception:  # only a warm-up: the page reports real errors itself
                    pass

    _at_exit(stop.set)
    thread = threading.Thread(target=work, name="tl-warmup", daemon=False)  # not inherited from the script thread
    thread.start()
    return thread


# ---- the browser session -------------------------------------------------------------------
def ensure_owner() -> str:
    """One id per browser session, mirrored in the URL (?s=...) so a refresh keeps its runs."""
    ss = st.session_state
    if "owner" not in ss:
        from_url = st.query_params.get("s", "")
        ss["owner"] = from_url if OWNER_RE.match(from_url or "") else uuid.uuid4().hex[:16]
    if st.query_params.get("s") != ss["owner"]:
        st.query_params["s"] = ss["owner"]
    return ss["owner"]


def owner() -> str:
    return st.session_state.get("owner") or ensure_owner()


def restore_session() -> None:
    """On the first run of a new browser session (a refresh, a second tab, the URL on another machine): bring
    back the session's kept settings before any widget is drawn. The upload comes back on first use
    (`restore_upload`), as reading it costs a second."""
    ss = st.session_state
    if "_kept" in ss:
        return
    try:
        ss["_kept"] = dict(sessions().load(owner()).settings)
    except (OSError, ValueError) as err:
        _log.warning("could not restore session %s: %s", owner(), err)
        ss["_kept"] = {}


def kept() -> dict:
    return st.session_state.setdefault("_kept", {})


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


def get(key: str) -> Any:
    """The current value of a shared setting (its widget's value if drawn this run, else the kept copy)."""
    if key in st.session_state:
        return st.session_state[key]
    return kept().get(key, DEFAULTS.get(key))


def seed_widget(key: str, default: Any = None, valid=None) -> None:
    """Before drawing the widget `key`: give it the kept value (or the default) if it has none.

    `valid(value)` may reject a stale value (an option that no longer exists), which then falls back
    to `default`. Widgets seeded here must not also pass `value=`/`index=`.
    """
    ss = st.session_state
    fallback = DEFAULTS.get(key) if default is None else default
    if key not in ss:
        ss[key] = kept().get(key, fallback)
    if valid is not None and not valid(ss[key]):
        ss[key] = fallback


def initial(key: str, default: Any = None, valid=None) -> Any:
    """The `value=` for a widget that is not drawn on every run (after an `st.stop()`, inside an `if`).

    Streamlit forgets such a widget's state while it is hidden, and a browser that gets it back shows the
    widget's own default, not a value put in Session State before drawing it (seen with Streamlit 1.67).
    Passing the kept value as the widget's default avoids both.
    """
    fallback = DEFAULTS.get(key) if default is None else default
    value = get(key)
    return fallback if valid is not None and not valid(value) else value


_MISSING = object()


def keep(*keys: str) -> None:
    """After drawing widgets: remember their values for the other pages, the next visit and the next session."""
    changes = {}
    for key in keys:
        if key in st.session_state:
            value = st.session_state[key]
            if not _same(kept().get(key, _MISSING), value):
                changes[key] = value
            kept()[key] = value
    _persist(changes)


def set_setting(key: str, value: Any) -> None:
    if not _same(kept().get(key, _MISSING), value):
        _persist({key: value})
    kept()[key] = value


# ---- the current data set ------------------------------------------------------------------
@dataclass
class DataChoice:
    source: str  # builtin:NAME or "upload"
    label: str  # what to show
    config_name: str | None  # TrainConfig.data
    kind: str | None  # image | text; None while no upload is loaded
    classes: list[str]
    dataset: Any = None  # the loaded upload (Dataset); None for built-ins (the worker loads them by name)

    @property
    def ready(self) -> bool:
        return self.kind is not None


def upload_key(raw: bytes, text_column: str, label_column: str) -> tuple[str, str, str]:
    """What identifies a loaded upload: its content and the columns it was read with."""
    return hashlib.sha256(raw).hexdigest(), text_column or "", label_column or ""


def accept_upload(name: str, raw: bytes, ds, key: tuple[str, str, str], *, save: bool = True) -> None:
    """`ds` (read from `raw`) becomes the session's data, here and, with `save`, on the server."""
    ss = st.session_state
    ss.update(upload_ds=ds, upload_bytes=raw, upload_name=name, upload_key=key)
    for stale in ("upload_failed_key", "upload_error", "upload_restore_error"):
        ss.pop(stale, None)
    if save:
        try:
            sessions().save_upload(owner(), name, raw)
        except (OSError, ValueError) as err:
            _log.warning("could not keep the upload of session %s: %s", owner(), err)
            ss["upload_restore_error"] = f"{name} is loaded, but could not be kept for a refresh: {err}"


def restore_upload() -> None:
    """Once per browser session: load the session's stored upload (read with the kept CSV columns)."""
    ss = st.session_state
    if ss.get("_upload_restored") or ss.get("upload_ds") is not None:
        return
    ss["_upload_restored"] = True
    try:
        stored = sessions().read_upload(owner())
    except (OSError, ValueError):
        stored = None
    if stored is None:
        return
    name, raw = stored
    text_column, label_column = get("text_column") or "", get("label_column") or ""
    from tl_core.inputs import data

    try:
        ds = data.load_upload(name, raw, text_column=text_column or None, label_column=label_column or None)
    except Exception as err:  # noqa: BLE001 - shown on the Data page; the student uploads it again
        ss["upload_restore_error"] = f"Your earlier upload {name} could not be read again: {user_error(err) or err}"
        return
    accept_upload(name, raw, ds, upload_key(raw, text_column, label_column), save=False)


def clear_upload() -> None:
    """Forget the session's upload, here and on the server (the Data page's Remove button)."""
    ss = st.session_state
    for key in ("upload_ds", "upload_bytes", "upload_name", "upload_key", "upload_failed_key", "upload_error",
                "upload_restore_error"):
        ss.pop(key, None)
    try:
        sessions().clear_upload(owner())
    except (OSError, ValueError) as err:
        _log.warning("could not clear the upload of session %s: %s", owner(), err)


def upload_data_name(name: str, key: tuple[str, str, str] | None) -> str:
    """The runs' `data` name for an upload: the file name and the start of its content hash, so runs on two
    different files that share a name are never offered as runs on the same data."""
    return f"upload:{name}@{key[0][:8]}" if key else f"upload:{name}"


def current_data() -> DataChoice:
    source = get("data_source") or DEFAULT_DATA
    if source == UPLOAD:
        restore_upload()
        ds = st.session_state.get("upload_ds")
        if ds is None:
            return DataChoice(UPLOAD, "no upload yet", None, None, [])
        name = st.session_state.get("upload_name", ds.name)
        config_name = upload_data_name(name, st.session_state.get("upload_key"))
        return DataChoice(UPLOAD, f"your upload {name}", config_name, ds.kind, list(ds.classes), ds)
    info = builtin_info(source) or builtin_info(DEFAULT_DATA)
    return DataChoice(info["name"], info["name"].split(":", 1)[1], info["name"], info["kind"], list(info["classes"]))


def load_choice_dataset(choice: DataChoice):
    """The Dataset object (a built-in is loaded by name; tl_core caches it)."""
    if choice.dataset is not None:
        return choice.dataset
    if choice.config_name is None:
        return None
    from tl_core.inputs import data

    return data.load_dataset(choice.config_name)


def labels_per_class() -> int | None:
    v = get("labels_per_class")
    return int(v) if v else None


def split_of(ds):
    """The train/validation split the kept settings give `ds`: what the Data page shows, the Train page
    summarises and the engine trains on (same function, same arguments)."""
    from tl_core.inputs import data

    return data.make_split(ds, val_per_class=int(get("val_per_class")), test_per_class=int(get("test_per_class")),
                           labels_per_class=labels_per_class(), seed=int(get("seed")))


# ---- the model settings --------------------------------------------------------------------
def effective_backbone(kind: str | None) -> str:
    """The chosen backbone if it fits the data kind, else the default for that kind."""
    family = FAMILY.get(kind or "image", "vision")
    name = get("backbone")
    if name in backbone_names(family):
        return name
    return DEFAULT_BACKBONE[kind or "image"]


def default_depth(n_blocks: int) -> int:
    return max(0, min(n_blocks, round(n_blocks / 2)))


def freeze_depth(n_blocks: int) -> int:
    v = get("freeze_depth")
    return default_depth(n_blocks) if v is None else max(0, min(int(v), n_blocks))


def effective_lr(mode: str, family: str = "vision") -> float:
    v = get("lr")
    return default_lr(mode, family) if v in (None, "auto") else float(v)


def run_plan(info: dict, n_classes: int, mode: str, depth: int | None, *, recipe: str | None = None,
             surgical_block: int | None = None) -> RunPlan:
    """What trains, from describe() alone (no model is built): the same plan `training.prepare` checks."""
    return plan_run(mode, depth, info, max(n_classes, 2), recipe=recipe, surgical_block=surgical_block)


def recipe() -> str | None:
    """The chosen recipe preset, None for plain settings."""
    v = get("recipe")
    return v if v in RECIPES else None


def surgical_block(n_blocks: int) -> int | None:
    """The block surgical fine-tuning tunes (the last one unless chosen); None without that recipe."""
    if recipe() != "surgical":
        return None
    v = get("surgical_block")
    return n_blocks - 1 if v is None else int(v)


def build_config(choice: DataChoice) -> TrainConfig:
    """The TrainConfig the Start button submits, from the kept settings."""
    backbone = effective_backbone(choice.kind)
    info = describe(backbone)
    mode = get("mode")
    n_blocks = len(info["blocks"])
    image_size = get("image_size")
    if info.get("fixed_image_size"):
        image_size = info["fixed_image_size"]
    lr = get("lr")
    preset = recipe()
    if preset is not None and RECIPES[preset] != mode:
        from tl_core.engine.recipes import CATALOGUE
        from tl_core.errors import ConfigError

        raise ConfigError(f"The recipe {CATALOGUE[preset].title} needs the mode {Mode(RECIPES[preset]).label}: "
                          "pick it on the Model page, or choose no recipe.")
    cfg = TrainConfig(
        data=choice.config_name or DEFAULT_DATA,
        backbone=backbone,
        mode=mode,
        freeze_depth=freeze_depth(n_blocks) if mode == "finetune" and preset != "surgical" else None,
        lp_ft=bool(get("lp_ft")) and mode == "finetune",
        recipe=preset,
        surgical_block=surgical_block(n_blocks),
        epochs=int(get("epochs")),
        lr=None if lr in (None, "auto") else float(lr),
        batch_size=int(get("batch_size")),
        image_size=int(image_size) if image_size and info["family"] == "vision" else None,
        labels_per_class=labels_per_class(),
        val_per_class=int(get("val_per_class")),
        test_per_class=int(get("test_per_class")),
        budget=None if get("budget") in (None, "auto") else get("budget"),
        ood_shift=get("ood_shift") or "blur",
        augment=bool(get("augment")) and info["family"] == "vision",
        seed=int(get("seed")),
        pretrained=not bool(get("random_init")),
        max_length=int(get("max_length")),
        text_column=(get("text_column") or None) if choice.source == UPLOAD else None,
        label_column=(get("label_column") or None) if choice.source == UPLOAD else None,
    )
    cfg.validate()
    return cfg


# ---- errors ------------------------------------------------------------------------------------
def user_error(err: Exception) -> str | None:
    """The one-line message for errors a user can fix (tl_core.errors.UserError), else None."""
    return str(err) if isinstance(err, UserError) else None
