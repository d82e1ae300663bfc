"""Explain a stored run: a validation image through Grad-CAM, a typed sentence through integrated gradients.

The engine (tl_core.engine.attribution) works on a model and an input; this module finds them for a run id: the
run's saved model, and its validation items rebuilt from the run's own split settings (the same seeded split the
run chose its epoch on, so "validation item 3" is the same image for every run that shares the split).

CLI: `python -m tl_core explain --run RUN_ID --item N` (image runs) or `--text "..."` (text runs), `--json`.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from tl_core.errors import UserError

UPLOAD_PREFIX = "upload:"


class ExplainError(UserError):
    """A run or an input that cannot be explained, said in words the user can act on."""


# ---- finding the run and its validation items -----------------------------------------------------------------------
def load_run(store, run_id: str):
    """(model, meta, run record) of a completed run with saved weights, or a one-line UserError."""
    from tl_core.runs import artifacts
    from tl_core.runs.export import run_folder

    folder = run_folder(store, run_id)  # unknown, unfinished or without weights: its own clear message
    model, meta = artifacts.load_run_model(folder)
    return model, meta, store.get_run(run_id)


def validation_set(config: dict, dataset=None):
    """(dataset, validation indices) as the run split them. An upload is not stored with its runs: pass the loaded
    `dataset` (the app has it on the Data page); the CLI can only reload built-ins, folders and files."""
    from tl_core.inputs import data

    name = str(config.get("data"))
    if dataset is None:
        if name.startswith(UPLOAD_PREFIX):
            raise ExplainError(f"this run was trained on an upload ({name[len(UPLOAD_PREFIX):]}), which is not stored "
                               "with its runs: explain it in the app with that upload loaded on the Data page")
        dataset = data.load_dataset(name, text_column=config.get("text_column"),
                                    label_column=config.get("label_column"))
    split = data.make_split(dataset, val_per_class=config.get("val_per_class", 20),
                            test_per_class=config.get("test_per_class", 50),
                            labels_per_class=config.get("labels_per_class"), seed=config.get("seed", 0))
    return dataset, split.val


def validation_image(ds, val: np.ndarray, item: int) -> tuple[np.ndarray, str, int]:
    """(uint8 HxWx3 image, true class, index in the dataset) of validation item `item` (see `validation_set`)."""
    if ds.kind != "image":
        raise ExplainError(f"{ds.name} holds texts, not images: explain a typed sentence instead")
    if not 0 <= item < len(val):
        raise ExplainError(f"validation item {item} is out of range: this run has {len(val)} validation images, "
                           f"numbered 0 to {len(val) - 1}")
    i = int(val[item])
    return ds.images[i], ds.classes[int(ds.labels[i])], i


def check_classes(meta: dict, classes: list[str], run_id: str) -> None:
    if list(meta["classes"]) != list(classes):
        raise ExplainError(f"run {run_id} was trained on other classes than this data now holds "
                           f"({', '.join(meta['classes'][:5])}... vs {', '.join(classes[:5])}...): the data changed")


def _about(run: dict, meta: dict) -> dict:
    cfg = run["config"]
    return {"run_id": run["run_id"], "backbone": meta["backbone"], "mode": cfg.get("mode"), "data": cfg.get("data"),
            "family": meta["family"]}


def explain_item(store, run_id: str, item: int, *, block: str | None = None, target=None, dataset=None) -> dict:
    """Grad-CAM of validation item `item` for an image run, as one JSON-ready dict."""
    from tl_core.engine import attribution

    model, meta, run = load_run(store, run_id)
    if meta["family"] != "vision":
        raise ExplainError(f"run {run_id} is a text model ({meta['backbone']}): class activation maps are for image "
                           'runs; give it a sentence with --text "..."')
    ds, val = validation_set(run["config"], dataset)
    check_classes(meta, ds.classes, run_id)
    image, true_class, index = validation_image(ds, val, item)
    cam = attribution.grad_cam(model, image, meta["classes"], target=target, block=block)
    return {**_about(run, meta), "item": item, "dataset_index": index, "true_class": true_class,
            "correct": cam.predicted_class == true_class, **cam.to_dict()}


def explain_sentence(store, run_id: str, text: str, *, target=None) -> dict:
    """Integrated-gradient token scores of `text` for a text run, as one JSON-ready dict."""
    from tl_core.engine import attribution

    model, meta, run = load_run(store, run_id)
    if meta["family"] != "text":
        raise ExplainError(f"run {run_id} is an image model ({meta['backbone']}): token attributions are for text "
                           "runs; pick a validation image with --item N")
    result = attribution.token_attributions(model, text, meta["classes"], target=target)
    return {**_about(run, meta), "text": result.text, **result.to_dict()}


def train_command(config: dict, mode: str) -> str:
    """The CLI line that trains `mode` on the split and settings of a run with `config` (so its validation items
    are the same images)."""
    parts = ["python -m tl_core train", f"--data {config.get('data')}", f"--backbone {config.get('backbone')}",
             f"--mode {mode}", f"--seed {config.get('seed', 0)}", f"--val-per-class {config.get('val_per_class', 20)}"]
    for key in ("labels_per_class", "image_size", "epochs"):
        if config.get(key) is not None:
            parts.append(f"--{key.replace('_', '-')} {config[key]}")
    return " ".join(parts)


# ---- CLI ------------------------------------------------------------------------------------------------------------
def _grid(cam: list[list[float]]) -> str:
    peak = max((v for row in cam for v in row), default=0.0) or 1.0
    return "\n".join("  " + " ".join(f"{v / peak:4.2f}" for v in row) for row in cam)


def cmd_explain(args) -> int:
    from tl_core.runs.store import RunStore

    if (args.item is None) == (args.text is None):
        print("error: give exactly one of --item N (an image run's validation image) or --text \"...\" "
              "(a sentence for a text run)", file=sys.stderr)
        return 2
    store = RunStore(args.store) if args.store else RunStore()
    target = args.target
    if args.item is not None:
        out = explain_item(store, args.run, args.item, block=args.block, target=target)
    else:
        out = explain_sentence(store, args.run, args.text, target=target)
    if args.json:
        print(json.dumps(out))
        return 0
    head = (f"run {out['run_id']} ({out['backbone']}, {out['mode']}): predicted {out['predicted_class']} "
            f"({100 * out['probability']:.1f}%)")
    if args.item is not None:
        h, w = out["map_size"]
        print(f"{head} for validation image {args.item} (true class {out['true_class']})")
        print(f"Grad-CAM for {out['target_class']} at block {out['block']} ({h}x{w} grid, 1.00 = strongest evidence):")
        print(_grid(out["cam"]))
    else:
        print(f"{head} for: {out['text']}")
        print(f"integrated gradients for {out['target_class']} (log-probability change per token; "
              f"> 0 supports it, < 0 speaks against it):")
        for t in out["tokens"]:
            print(f"  {t['score']:+8.4f}  {t['token']}")
        if out["truncated"]:
            print("note: the sentence was longer than the model reads; the tail was not seen")
    return 0


def add_explain_command(subparsers) -> None:
    """Add `explain` to the `python -m tl_core` subparsers."""
    e = subparsers.add_parser("explain", help="why a run decided: Grad-CAM of a validation image, or token "
                                              "attributions of a sentence")
    e.add_argument("--run", required=True, metavar="RUN_ID")
    e.add_argument("--item", type=int, help="image runs: the validation image to explain (0, 1, ...)")
    e.add_argument("--text", help="text runs: the sentence to explain")
    e.add_argument("--target", help="the class to explain (default: the predicted class)")
    e.add_argument("--block", help="image runs: the block to map (default: the last one with a spatial output)")
    e.add_argument("--store", help="run store path (default: $TL_DATA_DIR or ~/.local/share/transfer-lab)")
    e.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    e.set_defaults(func=cmd_explain)
