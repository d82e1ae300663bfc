"""The run the settings describe: the backbone that fits the data, the freeze depth, the recipe, what trains, and
the TrainConfig the Start button submits. Read from `ui.settings` only; the engine checks the result."""

from __future__ import annotations

from tl_core.config import RECIPES, Mode, TrainConfig
from tl_core.engine.plan import RunPlan
from ui import settings
from ui.data_choice import DEFAULT_DATA, UPLOAD, DataChoice, labels_per_class
from ui.services import backbone_names, describe

#: The backbone family that reads each kind of data, and each kind's default backbone.
FAMILY = {"image": "vision", "text": "text"}
DEFAULT_BACKBONE = {"image": settings.default("backbone"), "text": "all-MiniLM-L6-v2"}


def effective_backbone(kind: str | None) -> str:
    """The chosen backbone if it fits the data kind, else the default for that kind."""
    family = FAMILY.get(kind or "image", "vision")
    name = settings.get("backbone")
    if name in backbone_names(family):
        return name
    return DEFAULT_BACKBONE[kind or "image"]


def default_depth(n_blocks: int) -> int:
    """The freeze depth unless one is chosen: the engine's one default (half the blocks)."""
    import tl_core

    return tl_core.default_depth(n_blocks)


def freeze_depth(n_blocks: int) -> int:
    v = settings.get("freeze_depth")
    return default_depth(n_blocks) if v is None else max(0, min(int(v), n_blocks))


def recipe() -> str | None:
    """The chosen recipe preset, None for plain settings."""
    v = settings.get("recipe")
    return v if v in RECIPES else None


def surgical_block(n_blocks: int) -> int | None:
    """The block surgical fine-tuning tunes (the last one unless chosen); None without that recipe."""
    if recipe() != "surgical":
        return None
    v = settings.get("surgical_block")
    return n_blocks - 1 if v is None else int(v)


NO_DATA = "Load a data set on the Data page first."


def config_or_problem(choice: DataChoice) -> tuple[TrainConfig | None, str | None]:
    """For a view that works on the current data and settings: the TrainConfig Start would submit, or the one line
    that says why there is none (no data yet, or settings that cannot run)."""
    if not choice.ready:
        return None, NO_DATA
    try:
        return build_config(choice), None
    except Exception as err:  # noqa: BLE001 - a setting the pages already report where it is set
        from ui.messages import error_text

        return None, error_text(err)


def settings_plan(choice: DataChoice) -> RunPlan:
    """What the kept settings train on `choice` (2 classes before any data is chosen): the engine's own plan of the
    TrainConfig that Start would submit, before the split. Raises ConfigError where the settings cannot run."""
    import tl_core

    return tl_core.config_plan(build_config(choice), max(len(choice.classes), 2))


def _auto(value):
    """None for the widgets' "auto" (the engine decides), else the value."""
    return None if value in (None, settings.AUTO) else value


def build_config(choice: DataChoice) -> TrainConfig:
    """The TrainConfig the Start button submits, from the kept settings."""
    get = settings.get
    backbone = effective_backbone(choice.kind)
    info = describe(backbone)
    mode = get("mode")
    n_blocks = len(info["blocks"])
    image_size = info.get("fixed_image_size") or get("image_size")
    preset = recipe()
    if preset is not None and RECIPES[preset] != mode:
        from tl_core.engine.recipes import CATALOGUE
        from tl_core.errors import ConfigError

        raise ConfigError(f"The recipe {CATALOGUE[preset].title} needs the mode {Mode(RECIPES[preset]).label}: "
                          "pick it on the Model page, or choose no recipe.")
    lr, uploaded = _auto(get("lr")), choice.source == UPLOAD
    cfg = TrainConfig(
        data=choice.config_name or DEFAULT_DATA,
        backbone=backbone,
        mode=mode,
        freeze_depth=freeze_depth(n_blocks) if mode == "finetune" and preset != "surgical" else None,
        lp_ft=bool(get("lp_ft")) and mode == "finetune",
        recipe=preset,
        surgical_block=surgical_block(n_blocks),
        epochs=int(get("epochs")),
        lr=None if lr is None else float(lr),
        batch_size=int(get("batch_size")),
        image_size=int(image_size) if image_size and info["family"] == "vision" else None,
        labels_per_class=labels_per_class(),
        val_per_class=int(get("val_per_class")),
        test_per_class=int(get("test_per_class")),
        budget=_auto(get("budget")),
        ood_shift=get("ood_shift"),
        augment=bool(get("augment")) and info["family"] == "vision",
        seed=int(get("seed")),
        pretrained=not bool(get("random_init")),
        max_length=int(get("max_length")),
        text_column=(get("text_column") or None) if uploaded else None,
        label_column=(get("label_column") or None) if uploaded else None,
    )
    cfg.validate()
    return cfg
