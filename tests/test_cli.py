"""The CLI contract: JSON on stdout, progress on stderr, exit 2 with one line for bad input, 130 on Ctrl-C."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, store=None, timeout=300):
    cmd = [sys.executable, "-m", "tl_core", *args] + (["--store", str(store)] if store else [])
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def cli_here(capsys, *args, store=None) -> tuple[int, str, str]:
    """The CLI's `main` in this process: (exit code, stdout, stderr), without starting an interpreter that
    imports torch again. The exit-code contract of `python -m tl_core` itself is tested once, by `cli`."""
    from tl_core.cli import main

    capsys.readouterr()
    try:
        code = main([*args] + (["--store", str(store)] if store else []))
    except SystemExit as exit_:  # argparse rejects a malformed flag itself
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message.lower() in lines[0].lower()
    assert "Traceback" not in err and out == ""


def one_class_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for i in range(3):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(buf, "PNG")
            z.writestr(f"cats/{i}.png", buf.getvalue())
    return path


def test_backbones_json_lists_every_name_with_weight_status():
    out = cli("backbones", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    for name in ["resnet18", "resnet50", "vgg11_bn", "inception_v3", "densenet121", "efficientnet_b0",
                 "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "vit_b_16",
                 "convnext_tiny", "all-MiniLM-L6-v2", "bert-base-uncased", "distilbert-base-uncased",
                 "roberta-base", "gpt2", "t5-small", "xlnet-base-cased"]:
        assert {"name", "family", "blocks", "params", "weights"} <= set(rows[name])
    bundled_vision = [r["name"] for r in rows.values() if r["family"] == "vision" and r["weights"] == "bundled"]
    assert bundled_vision == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2"]
    assert rows["all-MiniLM-L6-v2"]["weights"] == "bundled"
    assert rows["resnet18"]["blocks"] == ["stem", "layer1", "layer2", "layer3", "layer4"]


def test_datasets_json():
    out = cli("datasets", "--json")
    names = [d["name"] for d in json.loads(out.stdout)]
    assert names == ["builtin:animals", "builtin:digits", "builtin:sentiment"]


def test_train_json_is_exactly_one_object(tmp_path):
    out = cli("train", "--data", "builtin:digits", "--backbone", "mobilenet_v2", "--mode", "finetune",
              "--freeze-depth", "6", "--epochs", "2", "--budget", "fixed", "--labels-per-class", "5", "--val-per-class", "5",
              "--image-size", "32", "--json", store=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # the whole of stdout parses as one object
    assert {"run_id", "backbone", "mode", "freeze_depth", "trainable_params", "total_params", "classes", "history",
            "best_val_acc", "final_val_acc", "confusion_matrix", "per_class", "device", "wall_s"} <= set(result)
    assert result["freeze_depth"] == 6 and result["mode"] == "finetune"
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert set(result["history"][0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    assert "epoch" in out.stderr  # progress went to stderr
    runs = json.loads(cli("runs", "--json", store=tmp_path).stdout)
    assert runs[0]["run_id"] == result["run_id"] and runs[0]["status"] == "completed"


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/data.zip", "--backbone", "mobilenet_v2"], "not found"),
    (["--data", "{txt}", "--backbone", "mobilenet_v2"], "not a zip"),
    (["--data", "{one}", "--backbone", "mobilenet_v2"], "class"),
    (["--data", "builtin:digits", "--backbone", "resnet9000"], "unknown backbone 'resnet9000'"),
    (["--data", "builtin:digits", "--backbone", "mobilenet_v2", "--mode", "finetune", "--freeze-depth", "42"],
     "out of range"),
    (["--data", "{csv}", "--backbone", "all-MiniLM-L6-v2"], "csv"),
    (["--data", "builtin:digits", "--backbone", "mobilenet_v2", "--epochs", "0"], "--epochs must be at least 1"),
], ids=["missing", "not-archive", "one-class", "unknown-backbone", "depth-range", "bad-csv", "zero-epochs"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    csv = tmp_path / "broken.csv"
    csv.write_bytes(b"\xff\xfe\x00garbage\x00\x00")
    fill = {"{txt}": str(txt), "{one}": str(one_class_zip(tmp_path / "one.zip")), "{csv}": str(csv)}
    assert_one_line_error(*cli_here(capsys, "train", *[fill.get(a, a) for a in args], store=tmp_path), message)


def test_python_m_tl_core_exits_2_with_one_line_on_bad_input(tmp_path):
    """The contract scripts rely on, through a real interpreter: exit status 2, one line on stderr, no stdout."""
    out = cli("train", "--data", "builtin:digits", "--backbone", "resnet9000", store=tmp_path)
    assert_one_line_error(out.returncode, out.stdout, out.stderr, "unknown backbone 'resnet9000'")


def test_ctrl_c_exits_130_and_records_cancelled(tmp_path):
    cmd = [sys.executable, "-m", "tl_core", "train", "--data", "builtin:digits", "--backbone", "mobilenet_v2",
           "--mode", "scratch", "--epochs", "50", "--image-size", "32", "--store", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and not line.startswith("run "):
        line = proc.stderr.readline()
    assert line.startswith("run "), "training never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    from tl_core.runs.store import RunStore

    assert [r["status"] for r in RunStore(tmp_path).list_runs()] == ["cancelled"]
