"""The data the session trains on: a built-in set or its upload, as the Data page chose it, and the split the
kept settings give it (the same one the Data page shows, the Train page summarises and the engine trains on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ui import settings, uploads
from ui.services import builtin_info

UPLOAD = "upload"
DEFAULT_DATA = settings.default("data_source")


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


def current_data() -> DataChoice:
    source = settings.get("data_source") or DEFAULT_DATA
    if source == UPLOAD:
        uploads.restore_upload()
        upload = uploads.loaded()
        if upload is None:
            return DataChoice(UPLOAD, "no upload yet", None, None, [])
        ds = upload.dataset
        config_name = uploads.upload_data_name(upload.name, upload.key)
        return DataChoice(UPLOAD, f"your upload {upload.name}", config_name, ds.kind, list(ds.classes), ds)
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
    """The labels per class the settings ask for; None for all of them."""
    v = settings.get("labels_per_class")
    return int(v) if v else None


def split_of(ds):
    """The train/validation/test split the kept settings give `ds`: what the Data page shows, the Train page
    summarises and the engine trains on (same function, same arguments)."""
    from tl_core.inputs import data

    return data.make_split(ds, val_per_class=int(settings.get("val_per_class")),
                           test_per_class=int(settings.get("test_per_class")),
                           labels_per_class=labels_per_class(), seed=int(settings.get("seed")))
