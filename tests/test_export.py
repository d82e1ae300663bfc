"""tl_core.runs.export: a finished run leaves the app as a zip whose predict.py and ONNX agree with the app.

Real (tiny) runs: mobilenet_v2 and MiniLM from their bundled weights, resnet18 from
random init. predict.py runs in a separate interpreter (isolated: tl_core is not
importable there) and must give the app's probabilities for the same input bytes.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tl_core.runs import artifacts, export
from tl_core import cli
from tl_core.inputs import data
from tl_core.config import TrainConfig
from tl_core.runs.store import RunStore
from tl_core.engine.training import train

TEXTS = ["what a wonderful day, I loved it", "worst service ever, never again", "meh"]


def _train(tmp_path_factory, **kw):
    store = RunStore(tmp_path_factory.mktemp("store") / "runs.sqlite")
    result = train(TrainConfig(epochs=2, labels_per_class=5, val_per_class=5, mode="frozen", **kw), store=store, owner="t")
    assert result.status == "completed"
    return store, result, store.artifacts_dir(result.run_id)


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory):
    return _train(tmp_path_factory, data="builtin:digits", backbone="mobilenet_v2", image_size=32)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    return _train(tmp_path_factory, data="builtin:sentiment", backbone="all-MiniLM-L6-v2")


def write_images(folder) -> list:
    """Inputs that exercise the decode path: odd sizes, transparency, an EXIF rotation, 16-bit grey."""
    rng = np.random.default_rng(0)
    paths = [folder / n for n in ("rgb.png", "alpha.png", "rotated.jpg", "grey16.png")]
    Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 256, (50, 40, 4), dtype=np.uint8), "RGBA").save(paths[1])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(rng.integers(0, 256, (30, 60, 3), dtype=np.uint8)).save(paths[2], "JPEG", exif=exif)
    Image.fromarray(rng.integers(0, 65536, (33, 33), dtype=np.uint16)).save(paths[3])
    return paths


def unzip(blob: bytes, dest):
    zipfile.ZipFile(io.BytesIO(blob)).extractall(dest)
    return dest


def start_predict_py(folder, inputs, top_k=100) -> subprocess.Popen:
    """The exported script in a fresh, isolated interpreter (-I: no PYTHONPATH, so no tl_core)."""
    return subprocess.Popen([sys.executable, "-I", "predict.py", *map(str, inputs), "--top-k", str(top_k), "--json"],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def exported(vision_run, text_run, tmp_path_factory):
    """Both runs exported and unzipped, their predict.py already running side by side (imports take seconds)."""
    root = tmp_path_factory.mktemp("exported")
    paths = write_images(root)
    vision_zip, text_zip = export.export_zip(vision_run[2]), export.export_zip(text_run[2])
    vision_dir, text_dir = unzip(vision_zip, root / "vision"), unzip(text_zip, root / "text")
    procs = [start_predict_py(vision_dir, paths), start_predict_py(text_dir, TEXTS)]
    yield {"vision": (vision_zip, vision_dir, procs[0]), "text": (text_zip, text_dir, procs[1]), "paths": paths}
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def as_matrix(rows: list[dict], classes: list[str]) -> np.ndarray:
    return np.array([[{p["class"]: p["probability"] for p in r["predictions"]}[c] for c in classes] for r in rows])


def import_script(path):
    spec = importlib.util.spec_from_file_location(f"exported_predict_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def onnx_logits(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(model.normalize(torch.from_numpy(x))).numpy()


# ---- image model ------------------------------------------------------------------------
def test_vision_zip_predict_py_and_onnx_match_the_app(vision_run, exported):
    _, result, folder = vision_run
    blob, out, proc = exported["vision"]
    assert sorted(zipfile.ZipFile(io.BytesIO(blob)).namelist()) == sorted(
        ["README.txt", "predict.py", "meta.json", "model.safetensors", "model.onnx"])
    assert "tl_core" not in (out / "predict.py").read_text()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"] == result.classes and meta["preprocess"]["image_size"] == 32
    readme = (out / "README.txt").read_text()
    assert "python predict.py" in readme and "uint8" in readme and "[N, 3, 32, 32]" in readme

    paths = exported["paths"]
    images = [data.decode_image(p.read_bytes())[0] for p in paths]
    assert images[2].shape == (60, 30, 3)  # the EXIF rotation was applied
    model, _ = artifacts.load_run_model(folder)
    expected = artifacts.predict_proba(model, images)

    rows = finish(proc)
    assert [r["input"] for r in rows] == [str(p) for p in paths]
    got = as_matrix(rows, result.classes)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["predictions"][0]["class"] for r in rows] == [result.classes[i] for i in expected.argmax(1)]

    # ONNX: the resized uint8 batch in, the torch model's logits out; any batch size
    x = artifacts.image_tensor(images, 32).numpy()
    np.testing.assert_allclose(onnx_logits(out / "model.onnx", x), torch_logits(model, x), atol=1e-4)
    np.testing.assert_allclose(onnx_logits(out / "model.onnx", x[:1]), torch_logits(model, x[:1]), atol=1e-4)


def test_reloaded_run_predicts_like_the_trained_model(vision_run):
    _, result, folder = vision_run
    images = [im for im in (np.random.default_rng(1).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8))]
    reloaded, meta = artifacts.load_run_model(folder)
    np.testing.assert_allclose(artifacts.predict_proba(reloaded, images),
                               artifacts.predict_proba(result.model.cpu(), images), atol=1e-6)


def test_predict_py_table_output_and_top_k(vision_run, tmp_path, capsys, monkeypatch):
    _, result, folder = vision_run
    out = unzip(export.export_zip(folder, include_onnx=False), tmp_path / "export")
    assert not (out / "model.onnx").exists() and "ONNX" not in (out / "README.txt").read_text()
    path = write_images(tmp_path)[0]
    script = import_script(out / "predict.py")
    monkeypatch.setattr(sys, "argv", ["predict.py", str(path), "--top-k", "3"])
    script.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(path) and len(lines) == 4
    probs = [float(line.split("%")[0]) / 100 for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and all(line.split()[-1] in result.classes for line in lines[1:])


def test_random_init_resnet18_round_trip(tmp_path_factory, tmp_path):
    """A non-bundled torchvision architecture: predict.py rebuilds it with get_model(num_classes=N)."""
    _, result, folder = _train(tmp_path_factory, data="builtin:digits", backbone="resnet18", image_size=32,
                               pretrained=False)
    out = unzip(export.export_zip(folder), tmp_path / "export")
    paths = write_images(tmp_path)[:2]
    images = [data.decode_image(p.read_bytes())[0] for p in paths]
    model, meta = artifacts.load_run_model(folder)
    assert meta["backbone"] == "resnet18"
    predict, classes = import_script(out / "predict.py").load(out)
    assert classes == result.classes
    np.testing.assert_allclose(predict(paths), artifacts.predict_proba(model, images), atol=1e-5)
    x = artifacts.image_tensor(images, 32).numpy()
    np.testing.assert_allclose(onnx_logits(out / "model.onnx", x), torch_logits(model, x), atol=1e-4)


# ---- text model ----------------------------------------------------------------------------
def test_text_zip_predict_py_matches_the_app(text_run, exported):
    _, result, folder = text_run
    blob, out, proc = exported["text"]  # export_zip's include_onnx is ignored for text
    names = zipfile.ZipFile(io.BytesIO(blob)).namelist()
    assert {"README.txt", "predict.py", "meta.json", "model.safetensors", "encoder/config.json"} <= set(names)
    assert any(n.startswith("tokenizer/") for n in names) and "model.onnx" not in names
    assert "tokenizer/" in (out / "README.txt").read_text()
    model, _ = artifacts.load_run_model(folder)
    expected = artifacts.predict_proba(model, TEXTS)
    np.testing.assert_allclose(artifacts.predict_proba(result.model.cpu(), TEXTS), expected, atol=1e-6)
    rows = finish(proc)
    np.testing.assert_allclose(as_matrix(rows, result.classes), expected, atol=1e-5)
    assert [r["predictions"][0]["class"] for r in rows] == [result.classes[i] for i in expected.argmax(1)]


# ---- CLI ----------------------------------------------------------------------------------------
def test_cli_export_and_predict(vision_run, tmp_path, capsys):
    store, result, folder = vision_run
    zip_path = tmp_path / "run.zip"
    assert cli.main(["export", result.run_id, "--out", str(zip_path), "--store", str(store.path), "--no-onnx"]) == 0
    assert "model.onnx" not in zipfile.ZipFile(zip_path).namelist()
    assert "predict.py" in zipfile.ZipFile(zip_path).namelist()
    for info in zipfile.ZipFile(zip_path).infolist():  # unzip gives files everyone can read, not 0600
        assert info.create_system == 3 and (info.external_attr >> 16) & 0o777 == 0o644, (info.filename, oct(info.external_attr >> 16))
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-q", str(zip_path), "-d", str(tmp_path / "out")], check=True)
        assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "out").iterdir()} == {"0o644"}
    capsys.readouterr()

    path = write_images(tmp_path)[0]
    assert cli.main(["predict", result.run_id, str(path), "--store", str(store.path), "--top-k", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    model, _ = artifacts.load_run_model(folder)
    p = artifacts.predict_proba(model, [data.decode_image(path.read_bytes())[0]])[0]
    assert len(rows[0]["predictions"]) == 2
    assert rows[0]["predictions"][0] == {"class": result.classes[p.argmax()], "probability": pytest.approx(p.max())}


def test_cli_predict_text_table(text_run, capsys):
    store, result, _ = text_run
    assert cli.main(["predict", result.run_id, TEXTS[0], "--store", str(store.path), "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == TEXTS[0] and len(lines) == 2 and lines[1].split()[-1] in result.classes


def test_unknown_or_unfinished_runs_are_one_line_errors(vision_run, capsys):
    store, _, _ = vision_run
    with pytest.raises(ValueError, match="unknown run 'nope'"):
        export.run_folder(store, "nope")
    store.create_run("still-running", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"}, owner="t")
    with pytest.raises(export.ExportError, match="is running, not completed"):
        export.run_folder(store, "still-running")
    for argv in (["export", "nope", "--out", "x.zip"], ["predict", "still-running", "a.png"]):
        assert cli.main([*argv, "--store", str(store.path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
