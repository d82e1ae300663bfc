"""Look inside a finished run: its saved model on the exact items it was validated and tested on.

A run stores its config (data, split sizes, seed) and its weights, so the split is rebuilt with the same function
and arguments training used (`data.make_split`) and the model is reloaded offline (`artifacts.load_run_model`).
Two questions are answered from there, for the Inspect page and the CLI (`embed`, `mistakes`):

* what the model learned: the pooled features of the validation items before training (the run's starting
  weights: the pretrained backbone, or the seeded random init of a from-scratch run) and after, with how well each
  separates the classes (tl_core.engine.embedding);
* where it fails: the class probabilities of every item, the confusion matrix they make, the items of one cell and
  the most confident mistakes (tl_core.engine.mistakes).

Anything a user can fix (an unknown run id, a cancelled run, a run without a saved model, an upload that is not
loaded) is an `InspectError`: one line in the app and the CLI.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tl_core.config import TrainConfig
from tl_core.engine import embedding, mistakes
from tl_core.errors import UserError
from tl_core.inputs import data
from tl_core.runs import run_select
from tl_core.runs.artifacts import META, WEIGHTS

SPLITS = {"val": "validation", "test": "test"}


class InspectError(UserError):
    """A run that cannot be inspected, said in words the user can act on."""


# ---- finding the run, its data and its items ------------------------------------------------------------------
def get_run(store, run_id: str) -> dict:
    """The stored record of a run that has a saved model, or an InspectError that says why not."""
    run = store.get_run(run_id)
    if run is None:
        raise InspectError(f"unknown run '{run_id}': list the runs with `python -m tl_core runs`")
    status = run["status"]
    if status == "cancelled":
        raise InspectError(f"run {run_id} was cancelled before it finished: it has no trained model to inspect; "
                           "pick a completed run")
    if status == "running":
        raise InspectError(f"run {run_id} is still training: inspect it once it has finished")
    if status != "completed":
        raise InspectError(f"run {run_id} {status}{': ' + run['error'] if run.get('error') else ''}; "
                           "it has no trained model to inspect")
    folder = store.artifacts_dir(run_id, create=False)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise InspectError(f"run {run_id} has no saved model (looked in {folder}): train it again to inspect it")
    return run


def run_dataset(run: dict, path: str | Path | None = None) -> data.Dataset:
    """The data a run trained on: a built-in or a path by name, or (an app upload) the file given as `path`."""
    cfg = run["config"]
    name = str(cfg.get("data") or "")
    columns = {"text_column": cfg.get("text_column"), "label_column": cfg.get("label_column")}
    if path is None:
        if name.startswith("upload:"):
            file = name.removeprefix("upload:").rsplit("@", 1)[0]
            raise InspectError(f"run {run['run_id']} was trained on an upload ({file}): load that file on the Data "
                               "page, or pass it with --data PATH")
        return data.load_dataset(name, **columns)
    path = Path(path)
    if name.startswith("upload:") and "@" in name and path.is_file():
        want = name.rsplit("@", 1)[1]
        if not hashlib.sha256(path.read_bytes()).hexdigest().startswith(want):
            raise InspectError(f"{path.name} is not the file run {run['run_id']} was trained on (its content differs)")
    return data.load_dataset(path, **columns)


@dataclass
class RunItems:
    """One split of a run's data, ready for its model: the items, their labels, and how to show them."""

    run: dict
    meta: dict
    model: object  # the trained TransferModel, eval mode, CPU
    dataset: data.Dataset
    parts: data.Split
    split: str  # val | test
    indices: np.ndarray  # into the dataset
    labels: np.ndarray

    def on(self, split: str) -> "RunItems":
        """The same run, model and data on another split (nothing is reloaded)."""
        if split not in SPLITS:
            raise InspectError(f"unknown split '{split}': use one of {', '.join(SPLITS)}")
        indices = getattr(self.parts, split)
        return replace(self, split=split, indices=indices, labels=self.dataset.labels[indices])

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.run["config"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def kind(self) -> str:
        return self.dataset.kind

    def inputs(self, model) -> object:
        """What training fed `model` for these items: uint8 images at the run's size, or token ids."""
        if self.kind == "image":
            return self.dataset.image_batch(self.indices, self.meta["preprocess"]["image_size"])
        enc = model.tokenizer([self.dataset.texts[i] for i in self.indices], padding=True, truncation=True,
                              max_length=self.meta["preprocess"]["max_length"], return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def images(self, positions) -> list[np.ndarray]:
        """HxWx3 uint8 images of the items at `positions`, as the model saw them (resized and cropped)."""
        idx = self.indices[np.asarray(positions, dtype=np.int64)]
        if self.kind != "image" or len(idx) == 0:
            return []
        return list(self.dataset.image_batch(idx, self.meta["preprocess"]["image_size"]).permute(0, 2, 3, 1).numpy())

    def texts(self, positions=None) -> list[str] | None:
        if self.kind != "text":
            return None
        idx = self.indices if positions is None else self.indices[np.asarray(positions, dtype=np.int64)]
        return [self.dataset.texts[i] for i in idx]


def open_run(store, run_id: str, *, split: str = "val", dataset: data.Dataset | None = None,
             data_path: str | Path | None = None) -> RunItems:
    """Reload a run's model and rebuild its split; `dataset` (the app's loaded upload) or `data_path` (the CLI's
    --data) stand in for data the store cannot reload by name."""
    from tl_core.runs.artifacts import load_run_model

    if split not in SPLITS:
        raise InspectError(f"unknown split '{split}': use one of {', '.join(SPLITS)}")
    run = get_run(store, run_id)
    ds = dataset if dataset is not None else run_dataset(run, data_path)
    try:
        model, meta = load_run_model(store.artifacts_dir(run_id, create=False))
    except Exception as err:  # noqa: BLE001 - a damaged or foreign artifacts folder: say so, in one line
        raise InspectError(f"the saved model of run {run_id} cannot be read ({type(err).__name__}: {err}): "
                           "train it again") from None
    if list(ds.classes) != list(meta["classes"]):
        raise InspectError(f"the data's classes ({', '.join(ds.classes[:6])}…) are not the ones run {run_id} "
                           f"learned ({', '.join(meta['classes'][:6])}…): it is not the data the run trained on")
    cfg = TrainConfig.from_dict(run["config"])
    parts = data.make_split(ds, val_per_class=cfg.val_per_class, test_per_class=cfg.test_per_class,
                            labels_per_class=cfg.labels_per_class, seed=cfg.seed)
    summary = run.get("summary") or {}
    for part in SPLITS:
        expected, found = summary.get(f"n_{part}"), len(getattr(parts, part))
        if expected is not None and expected != found:
            raise InspectError(f"the data has changed since run {run_id} trained: its {SPLITS[part]} split now "
                               f"holds {found} items, not {expected}")
    indices = getattr(parts, split)
    return RunItems(run, meta, model, ds, parts, split, indices, ds.labels[indices])


def start_model(cfg: TrainConfig, n_classes: int):
    """The run's weights before its first step: the same build `training.prepare` made (pretrained unless the run
    trained from scratch or from random weights; seeded, so a random init is the very same one)."""
    from tl_core.models import backbones

    model = backbones.build(cfg.backbone, n_classes=n_classes, pretrained=starts_pretrained(cfg), seed=cfg.seed,
                            image_size=cfg.image_size, max_length=cfg.max_length)
    return model.eval()


def starts_pretrained(cfg: TrainConfig) -> bool:
    return bool(cfg.pretrained) and cfg.mode != "scratch"


# ---- what the model learned -----------------------------------------------------------------------------------
@dataclass
class Embeddings:
    """The features of one split before and after training, and how well each separates the classes."""

    run_id: str
    split: str
    mode: str
    pretrained_start: bool
    classes: list[str]
    labels: np.ndarray
    predicted: np.ndarray  # by the trained model
    indices: np.ndarray
    texts: list[str] | None
    before_features: np.ndarray
    after_features: np.ndarray
    before: embedding.Separation
    after: embedding.Separation
    change: embedding.Change
    unchanged: bool  # the features are the same (a frozen backbone)
    seconds: float
    health: list[dict] = field(default_factory=list)

    def maps(self, method: str = "pca", seed: int = 0) -> tuple[embedding.Projection, embedding.Projection]:
        return embedding.project(self.before_features, method, seed=seed), \
            embedding.project(self.after_features, method, seed=seed)

    def to_dict(self, maps: tuple[embedding.Projection, embedding.Projection] | None = None) -> dict:
        out = {"run_id": self.run_id, "split": self.split, "mode": self.mode, "pretrained_start": self.pretrained_start,
               "classes": self.classes, "n_items": int(len(self.labels)), "unchanged": self.unchanged,
               "before": self.before.to_dict(), "after": self.after.to_dict(),
               "knn_gain": self.change.knn_gain, "knn_gain_se": self.change.knn_gain_se,
               "silhouette_gain": self.change.silhouette_gain, "direction": self.change.direction,
               "health": self.health, "seconds": round(self.seconds, 2)}
        if maps is not None:
            before, after = maps
            out["method"] = before.method
            out["explained"] = {"before": before.explained, "after": after.explained}
            out["items"] = [{"index": int(i), "true": self.classes[t], "predicted": self.classes[p],
                             "before": [round(float(b[0]), 4), round(float(b[1]), 4)],
                             "after": [round(float(a[0]), 4), round(float(a[1]), 4)],
                             **({"text": self.texts[j]} if self.texts else {})}
                            for j, (i, t, p, b, a) in enumerate(zip(self.indices, self.labels, self.predicted,
                                                                     before.xy, after.xy))]
        return out


def embeddings(items: RunItems, *, seed: int = 0) -> Embeddings:
    """Features before (the run's start) and after (its saved model), on the same items, and their separation
    measured on the same folds."""
    t0 = time.perf_counter()
    cfg = items.config
    cfg.image_size = cfg.image_size or items.meta["preprocess"].get("image_size")  # the size the run trained at
    start = start_model(cfg, len(items.classes))
    before, _ = embedding.features_and_logits(start, items.inputs(start))
    del start
    after, logits = embedding.features_and_logits(items.model, items.inputs(items.model))
    sep_before = embedding.separation(before, items.labels, seed=seed)
    sep_after = embedding.separation(after, items.labels, seed=seed)
    return Embeddings(
        run_id=items.run_id, split=items.split, mode=cfg.mode, pretrained_start=starts_pretrained(cfg),
        classes=items.classes, labels=items.labels, predicted=logits.argmax(1), indices=items.indices,
        texts=items.texts(), before_features=before, after_features=after, before=sep_before, after=sep_after,
        change=embedding.change(sep_before, sep_after),
        unchanged=before.shape == after.shape and bool(np.allclose(before, after, rtol=1e-4, atol=1e-5)),
        seconds=time.perf_counter() - t0, health=run_select.health_findings(items.run))


# ---- where it fails -------------------------------------------------------------------------------------------
@dataclass
class Predictions:
    """The trained model's class probabilities for every item of one split."""

    run_id: str
    split: str
    classes: list[str]
    labels: np.ndarray
    probs: np.ndarray  # [n, classes]
    indices: np.ndarray
    texts: list[str] | None = None
    health: list[dict] = field(default_factory=list)

    @property
    def predicted(self) -> np.ndarray:
        return mistakes.predicted(self.probs)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.labels) else 0.0

    def confusion_matrix(self) -> list[list[int]]:
        return mistakes.confusion(self.labels, self.probs, len(self.classes))

    def mistakes(self, limit: int | None = None) -> np.ndarray:
        return mistakes.confident_mistakes(self.labels, self.probs, limit)

    def cell(self, true_class: int | str, predicted_class: int | str) -> np.ndarray:
        return mistakes.cell_items(self.labels, self.probs, self.class_index(true_class),
                                   self.class_index(predicted_class))

    def class_index(self, name: int | str) -> int:
        if isinstance(name, (int, np.integer)) and 0 <= name < len(self.classes):
            return int(name)
        if name in self.classes:
            return self.classes.index(name)
        raise InspectError(f"unknown class '{name}': the classes are {', '.join(self.classes)}")

    def row(self, position: int, top: int = 3) -> dict:
        """One item for a gallery or JSON: its index, true and predicted class, confidence and top probabilities."""
        p = self.probs[position]
        order = np.argsort(-p, kind="stable")[:max(1, top)]
        out = {"index": int(self.indices[position]), "true": self.classes[int(self.labels[position])],
               "predicted": self.classes[int(order[0])], "confidence": float(p[order[0]]),
               "p_true": float(p[int(self.labels[position])]),
               "top": [{"class": self.classes[int(i)], "probability": float(p[i])} for i in order]}
        if self.texts is not None:
            out["text"] = self.texts[position]
        return out


def predictions(items: RunItems) -> Predictions:
    _, logits = embedding.features_and_logits(items.model, items.inputs(items.model))
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return Predictions(items.run_id, items.split, items.classes, items.labels, probs, items.indices, items.texts(),
                       run_select.health_findings(items.run))
