"""Take a finished run out of the app: one zip that predicts anywhere PyTorch runs.

The zip holds the run's own artifacts (safetensors weights, meta.json with the
preprocessing and class names, and for text the tokenizer and encoder config),
a standalone `predict.py` (the template beside this module, which needs no
Transfer Lab), a README.txt and, for image models, `model.onnx`. The ONNX graph
carries its normalisation: it takes uint8 RGB images already resized and
centre-cropped, so an ONNX user only has to reproduce the resize.

CLI: `python -m tl_core export RUN_ID --out FILE.zip` and
`python -m tl_core predict RUN_ID INPUT...` (see `add_export_commands`).
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

from tl_core.errors import UserError

# torch is imported inside the functions: building the CLI parser must stay instant.
META, WEIGHTS = "meta.json", "model.safetensors"  # as tl_core.runs.artifacts writes them

PREDICT_TEMPLATE = Path(__file__).with_name("predict_template.py")
ONNX_NAME = "model.onnx"
ONNX_OPSET = 17
TEXT_FOLDERS = ("tokenizer", "encoder")


class ExportError(UserError):
    """A run that cannot be exported or predicted with (unknown, unfinished, artifacts missing)."""


# ---- finding a run ----------------------------------------------------------------
def run_folder(store, run_id: str) -> Path:
    """The artifacts folder of a completed run in `store` (a RunStore), or a one-line ExportError."""
    run = store.get_run(run_id)
    if run is None:
        raise ExportError(f"unknown run '{run_id}' in {store.path}: list runs with `python -m tl_core runs`")
    if run["status"] != "completed":
        raise ExportError(f"run {run_id} is {run['status']}, not completed: only finished runs have saved weights")
    folder = store.artifacts_dir(run_id, create=False)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise ExportError(f"run {run_id} has no saved model in {folder}: train it again")
    return folder


# ---- ONNX ---------------------------------------------------------------------------
def onnx_wrapper(model):
    """uint8 [N,3,S,S] (resized, centre-cropped RGB) -> logits [N,classes]; normalisation inside the graph."""
    import torch

    class OnnxWrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(model.preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(model.preprocess.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, image):
            return self.model((image.float() / 255.0 - self.mean) / self.std)  # as TransferModel.normalize

    return OnnxWrapper().eval()


def _uneven_adaptive_pool(wrapper, example) -> bool:
    """Whether an adaptive average pool's output size does not divide its input (VGG at small image sizes).

    The TorchScript exporter fails on those, and dumps the whole graph to stdout
    while failing, so such models go straight to the dynamo exporter.
    """
    import torch

    uneven, hooks = [], []

    def check(module, inputs, output):
        h, w = inputs[0].shape[-2:]
        uneven.append(h % output.shape[-2] != 0 or w % output.shape[-1] != 0)

    for m in wrapper.modules():
        if isinstance(m, torch.nn.AdaptiveAvgPool2d):
            hooks.append(m.register_forward_hook(check))
    try:
        with torch.no_grad():
            wrapper(example)
    finally:
        for h in hooks:
            h.remove()
    return any(uneven)


def export_onnx(model, path: Path, opset: int = ONNX_OPSET) -> Path:
    """Export a vision TransferModel (moved to CPU, eval mode) to ONNX: input "image" uint8 [N,3,S,S],
    output "logits" [N,classes], dynamic batch.

    The TorchScript exporter (dynamo=False) goes first: for these networks it takes
    1-5 s and writes one self-contained file, where the dynamo exporter takes ~15 s.
    A graph it cannot express (VGG's 7x7 adaptive pooling of a small image) falls
    back to the dynamo exporter, with the weights kept inside the file.
    """
    if model.family != "vision":
        raise ExportError("ONNX export is for image models; text models export as safetensors + predict.py")
    import torch

    path = Path(path)
    wrapper = onnx_wrapper(model.cpu().eval())
    size = model.preprocess.image_size
    example = torch.zeros((2, 3, size, size), dtype=torch.uint8)
    names = dict(input_names=["image"], output_names=["logits"])
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # ViT's fused attention kernel has no ONNX form
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, tracer warnings
            try:
                if _uneven_adaptive_pool(wrapper, example):
                    raise NotImplementedError("the TorchScript exporter cannot express this pooling")
                torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=opset,
                                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, **names)
            except Exception:
                path.unlink(missing_ok=True)
                torch.onnx.export(wrapper, (example,), str(path), dynamo=True, opset_version=max(opset, 18),
                                  external_data=False, verbose=False,
                                  dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1)}}, **names)
    except Exception as err:
        raise ExportError(f"ONNX export of {model.name} failed ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else 'no details'})") from err
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return path


# ---- the zip --------------------------------------------------------------------------
def _versions(meta: dict) -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "torchvision"] if meta["family"] == "vision" else ["torch", "transformers"]
    if meta["backbone"] == "efficientnet_lite0":
        names.append("efficientnet_lite_pytorch")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def readme_text(meta: dict, include_onnx: bool, onnx_problem: str | None = None) -> str:
    classes = meta["classes"]
    shown = ", ".join(classes[:20]) + (f", ... ({len(classes)} in all)" if len(classes) > 20 else "")
    pre = meta["preprocess"]
    if meta["family"] == "vision":
        needs = "torch torchvision safetensors pillow numpy" + (
            " efficientnet_lite_pytorch" if meta["backbone"] == "efficientnet_lite0" else "")
        example = "python predict.py photo.jpg another.png --top-k 3"
        files = ""
        prep = (f"Preprocessing (done by predict.py): decode with PIL, apply the EXIF rotation, flatten transparency\n"
                f"onto white, convert to RGB; resize the shorter side to {pre['image_size']} px (torch bilinear,\n"
                f"antialias=True, rounded back to uint8), centre-crop {pre['image_size']}x{pre['image_size']}; "
                f"scale to [0,1] and normalise\nwith mean {pre['mean']} and std {pre['std']}.\n")
    else:
        needs = "torch transformers safetensors numpy"
        example = 'python predict.py "first text to classify" "a second one" --top-k 3'
        files = ("  tokenizer/          the tokenizer (Hugging Face format)\n"
                 "  encoder/            the encoder's architecture (Hugging Face config.json)\n")
        prep = (f"Preprocessing (done by predict.py): tokenize (truncate to {pre['max_length']} tokens), run the\n"
                "encoder, average its last hidden states over the real (unpadded) tokens, then the linear head.\n")
    if include_onnx and meta["family"] == "vision":
        s = pre["image_size"]
        files += f"  {ONNX_NAME}          the same model as ONNX (see below)\n"
        onnx = (f"\nONNX\n----\n{ONNX_NAME} takes input \"image\": uint8 RGB, shape [N, 3, {s}, {s}] (any batch size),\n"
                f"ALREADY resized and centre-cropped as described above (predict.py's resize_crop does it);\n"
                f"the normalisation is inside the graph. Output \"logits\": float [N, {len(classes)}]; apply softmax\n"
                f"for probabilities. Class i is meta.json's classes[i]. Example:\n\n"
                f"    import onnxruntime as ort, torch\n"
                f"    from predict import load_image, resize_crop  # run from this folder\n"
                f"    x = resize_crop(torch.from_numpy(load_image('photo.jpg')).permute(2, 0, 1)[None], {s}).numpy()\n"
                f"    logits = ort.InferenceSession('{ONNX_NAME}').run(None, {{'image': x}})[0]\n")
    else:
        onnx = f"\nONNX\n----\nNo model.onnx: {onnx_problem}\n" if onnx_problem else ""
    return (f"Transfer Lab export: {meta['backbone']} ({meta['family']}), {len(classes)} classes\n"
            f"Classes: {shown}\n"
            f"Exported with {_versions(meta)}\n\n"
            f"Run it\n------\n    pip install {needs}\n    {example}\n\n"
            "It prints the top-k classes with their probabilities (default 5); add --json for machine-readable\n"
            "output. Run it from any folder: it finds its files beside itself. No Transfer Lab install is needed.\n\n"
            f"Files\n-----\n"
            "  predict.py          standalone prediction script\n"
            "  model.safetensors   the trained weights (safetensors: no pickle, safe to load). Keys are the\n"
            "                      library's own with a 'net.' prefix" +
            (" (torchvision / efficientnet_lite_pytorch with the\n"
             "                      new head in the classifier slot)\n" if meta["family"] == "vision" else
             "; the classification head is 'head.*'\n") +
            "  meta.json           backbone, class names (in output order) and preprocessing\n"
            f"{files}\n{prep}{onnx}")


#: Unix permissions of every file in the zip: readable by all, as a downloaded file should be. Without them,
#: ZipFile.writestr records 0600 and `unzip` gives files only their owner can read.
FILE_MODE = 0o644


def _add(zf: zipfile.ZipFile, name: str, data: bytes, *, stored: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.create_system = 3  # Unix: unzip applies the mode below
    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def export_zip(folder: Path, *, include_onnx: bool = True) -> bytes:
    """The run in `folder` (an artifacts folder) as zip bytes, ready to download or write."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise ExportError(f"{folder} holds no saved model (expected {WEIGHTS} and {META})")
    meta = json.loads((folder / META).read_text())
    include_onnx = include_onnx and meta["family"] == "vision"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        _add(zf, "predict.py", PREDICT_TEMPLATE.read_bytes())
        _add(zf, META, (folder / META).read_bytes())
        # Binary members are stored: deflate saves ~8% on float weights and takes ~20x longer.
        _add(zf, WEIGHTS, (folder / WEIGHTS).read_bytes(), stored=True)
        if meta["family"] == "text":
            for sub in TEXT_FOLDERS:
                for f in sorted((folder / sub).rglob("*")):
                    if f.is_file():
                        _add(zf, f.relative_to(folder).as_posix(), f.read_bytes())
        onnx_problem = None
        if include_onnx:
            from tl_core.runs.artifacts import load_run_model

            model, _ = load_run_model(folder)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    _add(zf, ONNX_NAME, export_onnx(model, Path(tmp) / ONNX_NAME).read_bytes(), stored=True)
                except ExportError as err:  # the zip is still complete without it; the README says why
                    onnx_problem = str(err)
        _add(zf, "README.txt", readme_text(meta, include_onnx and onnx_problem is None, onnx_problem).encode())
    return buf.getvalue()


# ---- CLI ---------------------------------------------------------------------------------
def _store(args):
    from tl_core.runs.store import RunStore

    return RunStore(args.store) if args.store else RunStore()


def format_predictions(inputs: list[str], probs, classes: list[str], k: int) -> list[dict]:
    """The same rows predict.py prints with --json."""
    import numpy as np

    return [{"input": x, "predictions": [{"class": classes[i], "probability": float(p[i])}
                                         for i in np.argsort(-p, kind="stable")[: max(1, k)]]}
            for x, p in zip(inputs, probs)]


def _error(err: Exception) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2


def cmd_export(args) -> int:
    try:
        folder = run_folder(_store(args), args.run_id)
        blob = export_zip(folder, include_onnx=not args.no_onnx)
    except ExportError as err:
        return _error(err)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(blob)
    os.replace(tmp, out)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = [n for n in zf.namelist() if "/" not in n] + sorted({n.split("/")[0] + "/" for n in zf.namelist() if "/" in n})
    print(f"wrote {out} ({len(blob) / 2**20:.1f} MB): {', '.join(names)}", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from tl_core.runs import artifacts
    from tl_core.inputs import data

    try:
        folder = run_folder(_store(args), args.run_id)
    except ExportError as err:
        return _error(err)
    model, meta = artifacts.load_run_model(folder)
    if meta["family"] == "vision":
        inputs = [data.decode_image(Path(p).read_bytes(), max_short_side=None)[0] for p in args.inputs]
    else:
        inputs = list(args.inputs)
    rows = format_predictions(args.inputs, artifacts.predict_proba(model, inputs), meta["classes"], args.top_k)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(row["input"])
        for pred in row["predictions"]:
            print(f"  {pred['probability']:7.2%}  {pred['class']}")
    return 0


def add_export_commands(subparsers) -> None:
    """Add `export` and `predict` to the `python -m tl_core` subparsers."""
    e = subparsers.add_parser("export", help="zip a finished run: weights, preprocessing, standalone predict.py, ONNX")
    e.add_argument("run_id")
    e.add_argument("--out", required=True, help="the zip file to write")
    e.add_argument("--store", help="run store path (default: $TL_DATA_DIR or ~/.local/share/transfer-lab)")
    e.add_argument("--no-onnx", action="store_true", help="skip model.onnx (image models)")
    e.set_defaults(func=cmd_export)
    p = subparsers.add_parser("predict", help="top-k classes from a finished run for image files or texts")
    p.add_argument("run_id")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (image model) or strings (text model)")
    p.add_argument("--store", help="run store path (default: $TL_DATA_DIR or ~/.local/share/transfer-lab)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_predict)
