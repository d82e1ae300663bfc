"""Plots and report text are pure functions of run records: checked here without any UI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

from tl_core import plots, report
from tl_core.plots import MODE_COLORS, MODE_LABELS

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["cat", "dog", "fox", "owl"]


def make_history(n: int, start: float = 0.4, step: float = 0.05) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 1.5 - 0.1 * e,
            "train_acc": min(1.0, start + step * e + 0.05),
            "val_loss": 1.6 - 0.08 * e,
            "val_acc": min(1.0, start + step * e),
            "seconds": 0.4,
        }
        for e in range(1, n + 1)
    ]


def make_run(
    run_id: str,
    mode: str,
    best: float | None,
    lpc: int = 25,
    k: int = 3,
    created: str = "2026-11-27T23:40:00",
    status: str = "completed",
    backbone: str = "mobilenet_v2",
    history: list[dict] | None = None,
) -> dict:
    summary = {}
    if status == "completed":
        summary = {
            "best_val_acc": best,
            "final_val_acc": best,
            "classes": CLASSES,
            "confusion_matrix": [[9, 1, 0, 0], [2, 8, 0, 0], [0, 0, 10, 0], [0, 1, 0, 9]],
            "per_class": [],
            "trainable_params": 12810,
            "total_params": 2236682,
            "wall_s": 3.2,
            "n_train": 4 * lpc,
            "n_val": 80,
        }
    return {
        "run_id": run_id,
        "owner": "session-xyz",
        "created_at": created,
        "status": status,
        "device": "cpu",
        "config": {
            "data": "builtin:animals",
            "backbone": backbone,
            "mode": mode,
            "freeze_depth": k,
            "epochs": 5,
            "lr": 0.001,
            "batch_size": 32,
            "image_size": 64,
            "labels_per_class": lpc,
            "val_per_class": 20,
            "augment": False,
            "seed": 0,
            "pretrained": mode != "scratch",
        },
        "summary": summary,
        "history": make_history(5) if history is None else history,
    }


def serialisable(fig: go.Figure) -> dict:
    assert isinstance(fig, go.Figure)
    return json.loads(fig.to_json())


def annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.text]


def chance_lines(fig: go.Figure) -> list:
    return [s for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dash"]


# ---------------------------------------------------------------- vocabulary


def test_plots_and_report_import_no_ui():
    code = "import sys, tl_core.plots, tl_core.report; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_mode_vocabulary():
    assert MODE_LABELS == {
        "frozen": "Feature extraction (frozen)",
        "finetune": "Fine-tune",
        "scratch": "From scratch",
    }
    assert set(MODE_COLORS) == set(MODE_LABELS)
    assert len(set(MODE_COLORS.values())) == 3
    assert plots.mode_color("lpft") not in (None, "")
    assert plots.mode_label("lpft") == "lpft"


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0"),
        (512, "512"),
        (12810, "12.8K"),
        (128_000, "128K"),
        (999_999, "1M"),
        (1_234_567, "1.2M"),
        (3_400_000, "3.4M"),
        (85_800_000, "86M"),
        (1_200_000_000, "1.2B"),
        (None, "?"),
    ],
)
def test_format_params(n, text):
    assert plots.format_params(n) == text


# ---------------------------------------------------------------- learning curves


def test_learning_curves_two_panels_train_dashed_val_solid():
    hist = make_history(6)
    fig = plots.learning_curves(hist, mode="finetune")
    serialisable(fig)
    assert len(fig.data) == 4
    by_key = {t.meta: t for t in fig.data}
    assert set(by_key) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    assert list(by_key["val_acc"].x) == [1, 2, 3, 4, 5, 6]
    assert list(by_key["val_acc"].y) == pytest.approx([h["val_acc"] for h in hist])
    assert by_key["train_loss"].line.dash == "dash" and by_key["train_acc"].line.dash == "dash"
    assert by_key["val_loss"].line.dash == "solid" and by_key["val_acc"].line.dash == "solid"
    # loss on the left panel, accuracy on the right
    assert by_key["val_loss"].xaxis == "x" and by_key["val_acc"].xaxis == "x2"
    assert all(t.line.color == MODE_COLORS["finetune"] for t in fig.data)
    # accuracy as percent, epochs as integers
    assert fig.layout.yaxis2.tickformat == ".0%"
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"
    assert "loss" in fig.layout.yaxis.title.text and "%" in fig.layout.yaxis2.title.text
    # best validation epoch is pointed out
    best = max(hist, key=lambda h: h["val_acc"])
    assert any(f"epoch {best['epoch']}" in t for t in annotation_texts(fig))


def test_learning_curves_single_point_uses_markers():
    fig = plots.learning_curves(make_history(1))
    serialisable(fig)
    assert len(fig.data) == 4
    assert all("markers" in t.mode and len(t.x) == 1 for t in fig.data)


def test_learning_curves_empty_history_waits():
    for hist in ([], None):
        fig = plots.learning_curves(hist)
        serialisable(fig)
        assert len(fig.data) == 0
        assert any("waiting for the first epoch" in t.lower() for t in annotation_texts(fig))


def test_learning_curves_partial_epoch_missing_val():
    hist = make_history(2) + [{"epoch": 3, "train_loss": 1.0, "train_acc": 0.7}]
    fig = plots.learning_curves(hist)
    serialisable(fig)
    by_key = {t.meta: t for t in fig.data}
    assert list(by_key["train_acc"].x) == [1, 2, 3]
    assert list(by_key["val_acc"].x) == [1, 2]


# ---------------------------------------------------------------- overlay


def test_overlay_curves_labels_colours_and_running_runs():
    runs = [
        make_run("a1b2c3", "finetune", 0.88, k=3),
        make_run("d4e5f6", "frozen", 0.86),
        make_run("g7h8i9", "scratch", None, status="running", history=make_history(2)),
        make_run("zzz000", "scratch", None, status="running", history=[]),  # nothing to draw yet
    ]
    fig = plots.overlay_curves(runs)
    serialisable(fig)
    assert len(fig.data) == 3
    names = [t.name for t in fig.data]
    assert names[0] == "mobilenet_v2 · Fine-tune (k=3) · 25/class · a1b2c3"
    assert names[1] == "mobilenet_v2 · Feature extraction (frozen) · 25/class · d4e5f6"
    assert names[2].startswith("mobilenet_v2 · From scratch · 25/class · g7h8i9")
    assert "running" in names[2]
    assert [t.line.color for t in fig.data] == [
        MODE_COLORS["finetune"],
        MODE_COLORS["frozen"],
        MODE_COLORS["scratch"],
    ]
    assert list(fig.data[2].x) == [1, 2]
    assert fig.layout.yaxis.tickformat == ".0%"


def test_overlay_curves_loss_metric_and_same_mode_dashes():
    runs = [make_run("r1", "finetune", 0.8, k=1), make_run("r2", "finetune", 0.85, k=4)]
    fig = plots.overlay_curves(runs, metric="val_loss")
    serialisable(fig)
    assert fig.layout.yaxis.tickformat is None
    assert "loss" in fig.layout.yaxis.title.text
    assert list(fig.data[0].y) == pytest.approx([h["val_loss"] for h in make_history(5)])
    assert fig.data[0].line.dash != fig.data[1].line.dash  # same colour, told apart by dash
    assert fig.data[0].line.color == fig.data[1].line.color == MODE_COLORS["finetune"]
    with pytest.raises(ValueError):
        plots.overlay_curves(runs, metric="nope")


def test_overlay_curves_empty():
    fig = plots.overlay_curves([])
    serialisable(fig)
    assert len(fig.data) == 0 and annotation_texts(fig)


# ---------------------------------------------------------------- transfer gap


def test_transfer_gap_bars_single_lpc():
    runs = [
        make_run("f1", "frozen", 0.80, created="2026-11-27T10:00:00"),
        make_run("f2", "frozen", 0.86, created="2026-11-27T11:00:00"),  # latest frozen counts
        make_run("t1", "finetune", 0.88),
        make_run("s1", "scratch", 0.55),
        make_run("s2", "scratch", None, status="running"),  # ignored
    ]
    fig = plots.transfer_gap(runs)
    serialisable(fig)
    assert all(isinstance(t, go.Bar) for t in fig.data)
    assert [t.name for t in fig.data] == [MODE_LABELS[m] for m in ("frozen", "finetune", "scratch")]
    assert [t.marker.color for t in fig.data] == [MODE_COLORS[m] for m in ("frozen", "finetune", "scratch")]
    assert [t.y[0] for t in fig.data] == pytest.approx([0.86, 0.88, 0.55])
    assert [t.text[0] for t in fig.data] == ["86%", "88%", "55%"]
    assert fig.layout.yaxis.tickformat == ".0%"
    # chance line at 1/4
    lines = chance_lines(fig)
    assert len(lines) == 1 and lines[0].y0 == pytest.approx(0.25)
    assert any("chance" in t and "25%" in t for t in annotation_texts(fig))
    # title names the data and the backbone
    assert "animals" in fig.layout.title.text and "mobilenet_v2" in fig.layout.title.text
    assert "25 labels per class" in fig.layout.title.subtitle.text


def test_transfer_gap_lines_over_labels_per_class():
    runs = []
    for lpc, (fz, ft, sc) in {5: (0.6, 0.55, 0.3), 25: (0.86, 0.88, 0.55), 100: (0.9, 0.95, 0.8)}.items():
        runs += [
            make_run(f"f{lpc}", "frozen", fz, lpc=lpc),
            make_run(f"t{lpc}", "finetune", ft, lpc=lpc),
            make_run(f"s{lpc}", "scratch", sc, lpc=lpc),
        ]
    runs.append(make_run("x", "scratch", None, lpc=10, status="failed"))  # not a data point
    fig = plots.transfer_gap(runs)
    serialisable(fig)
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    assert len(fig.data) == 3
    by_mode = {t.meta: t for t in fig.data}
    assert list(by_mode["scratch"].x) == ["5", "25", "100"]
    assert list(by_mode["scratch"].y) == pytest.approx([0.3, 0.55, 0.8])
    assert list(by_mode["finetune"].y) == pytest.approx([0.55, 0.88, 0.95])
    assert by_mode["frozen"].line.color == MODE_COLORS["frozen"]
    assert list(fig.layout.xaxis.categoryarray) == ["5", "25", "100"]
    assert "labels per class" in fig.layout.xaxis.title.text
    assert len(chance_lines(fig)) == 1


def test_transfer_gap_two_backbones_groups_by_backbone():
    runs = [
        make_run("a", "frozen", 0.8, backbone="resnet18"),
        make_run("b", "frozen", 0.7, backbone="mobilenet_v2"),
        make_run("c", "scratch", 0.5, backbone="resnet18"),
    ]
    fig = plots.transfer_gap(runs)
    serialisable(fig)
    by_mode = {t.meta: t for t in fig.data}
    assert list(by_mode["frozen"].x) == ["resnet18", "mobilenet_v2"]
    assert list(by_mode["frozen"].y) == pytest.approx([0.8, 0.7])
    assert list(by_mode["scratch"].x) == ["resnet18"]
    assert "resnet18" in fig.layout.title.text and "mobilenet_v2" in fig.layout.title.text


def test_transfer_gap_no_completed_runs():
    fig = plots.transfer_gap([make_run("r", "frozen", None, status="running", history=[])])
    serialisable(fig)
    assert len(fig.data) == 0 and annotation_texts(fig)


# ---------------------------------------------------------------- freeze sweep


def test_freeze_sweep_lines_per_mode_and_scratch_reference():
    runs = [make_run(f"t{k}", "finetune", 0.80 + 0.01 * k, k=k) for k in (0, 2, 4, 6)]
    runs += [make_run(f"f{k}", "frozen", 0.90 - 0.05 * k, k=k) for k in (0, 2, 4, 6)]
    runs.append(make_run("s", "scratch", 0.5, k=0))
    runs.append(make_run("t2b", "finetune", 0.99, k=2, created="2026-11-28T00:00:00"))  # latest wins
    fig = plots.freeze_sweep(runs)
    serialisable(fig)
    by_mode = {t.meta: t for t in fig.data}
    assert set(by_mode) == {"frozen", "finetune", "scratch"}
    assert list(by_mode["finetune"].x) == [0, 2, 4, 6]
    assert list(by_mode["finetune"].y) == pytest.approx([0.80, 0.99, 0.84, 0.86])
    assert list(by_mode["frozen"].y) == pytest.approx([0.90, 0.80, 0.70, 0.60])
    # a single from-scratch run spans the sweep as a dotted reference line
    assert list(by_mode["scratch"].x) == [0, 6] and list(by_mode["scratch"].y) == [0.5, 0.5]
    assert by_mode["scratch"].line.dash == "dot"
    for m, t in by_mode.items():
        assert t.line.color == MODE_COLORS[m]
    assert list(fig.layout.xaxis.tickvals) == [0, 2, 4, 6]
    assert fig.layout.yaxis.tickformat == ".0%"
    lines = chance_lines(fig)
    assert len(lines) == 1 and lines[0].y0 == pytest.approx(0.25)


def test_freeze_sweep_empty():
    fig = plots.freeze_sweep([])
    serialisable(fig)
    assert len(fig.data) == 0 and annotation_texts(fig)


# ---------------------------------------------------------------- confusion matrix


def test_confusion_matrix_normalised_rows_and_counts():
    cm = [[9, 1], [2, 8]]
    fig = plots.confusion_matrix(cm, ["cat", "dog"])
    serialisable(fig)
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap)
    assert [list(r) for r in hm.z] == [pytest.approx([0.9, 0.1]), pytest.approx([0.2, 0.8])]
    assert hm.text[0][0].startswith("9") and "90%" in hm.text[0][0]
    assert hm.text[1][0].startswith("2") and "20%" in hm.text[1][0]
    assert list(hm.x) == ["cat", "dog"] and list(hm.y) == ["cat", "dog"]
    assert fig.layout.yaxis.title.text == "true class"
    assert fig.layout.xaxis.title.text == "predicted class"
    assert fig.layout.yaxis.autorange == "reversed"  # first class on top
    assert hm.zmax == 1
    assert "17 of 20" in fig.layout.title.subtitle.text and "85%" in fig.layout.title.subtitle.text


def test_confusion_matrix_raw_counts_and_empty_row():
    cm = [[5, 0, 0], [0, 0, 0], [1, 0, 4]]
    fig = plots.confusion_matrix(cm, ["a", "b", "c"], normalize=False)
    serialisable(fig)
    assert [list(r) for r in fig.data[0].z] == [[5, 0, 0], [0, 0, 0], [1, 0, 4]]
    assert fig.data[0].text[2][2] == "4"
    norm = plots.confusion_matrix(cm, ["a", "b", "c"])
    assert list(norm.data[0].z[1]) == [0, 0, 0]  # a class with no images does not divide by zero
    with pytest.raises(ValueError):
        plots.confusion_matrix([[1, 2]], ["a", "b"])
    assert len(plots.confusion_matrix([], []).data) == 0


# ---------------------------------------------------------------- class balance, top-k


def test_class_balance():
    counts = {"cat": 30, "dog": 10, "fox": 20}
    fig = plots.class_balance(counts)
    serialisable(fig)
    bar = fig.data[0]
    assert list(bar.x) == ["cat", "dog", "fox"] and list(bar.y) == [30, 10, 20]
    assert "3.0×" in fig.layout.title.subtitle.text and "imbalanced" in fig.layout.title.subtitle.text
    assert "count" in fig.layout.yaxis.title.text
    assert len(plots.class_balance({}).data) == 0
    texts = plots.class_balance({"neg": 40, "pos": 20}, "Texts per class", unit="texts")  # a CSV counts texts
    assert texts.layout.yaxis.title.text == "texts (count)" and "60 texts" in texts.layout.title.subtitle.text
    assert "texts" in texts.data[0].hovertemplate and "image" not in json.dumps(serialisable(texts)["data"]).lower()


def test_topk_bar_highest_on_top():
    probs = {"cat": 0.1, "dog": 0.6, "fox": 0.05, "owl": 0.2, "cow": 0.03, "pig": 0.02}
    fig = plots.topk_bar(probs, k=3)
    serialisable(fig)
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["dog", "owl", "cat"]
    assert list(bar.x) == pytest.approx([0.6, 0.2, 0.1])
    assert fig.layout.yaxis.autorange == "reversed"  # first item drawn at the top
    assert fig.layout.xaxis.tickformat == ".0%"
    assert bar.text[0] == "60.0%"
    assert len(plots.topk_bar(probs).data[0].y) == 5


# ---------------------------------------------------------------- block diagram


def _boxes(fig):
    return {s.name.split(":", 1)[1]: s for s in fig.layout.shapes if s.name and s.name.startswith(("block:", "head:"))}


def test_block_diagram_finetune_frozen_first_k():
    names = ["stem", "layer1", "layer2", "layer3", "layer4"]
    params = [9_536, 147_968, 525_568, 2_099_712, 8_393_728]
    fig = plots.block_diagram(names, params, freeze_depth=2, mode="finetune", head_params=5_130)
    serialisable(fig)
    boxes = _boxes(fig)
    assert list(boxes) == names + ["new head"]
    assert [boxes[n].fillcolor for n in names[:2]] == [plots.FROZEN_FILL] * 2
    trainable = {boxes[n].fillcolor for n in names[2:]}
    assert len(trainable) == 1 and plots.FROZEN_FILL not in trainable
    assert boxes["layer3"].line.color == MODE_COLORS["finetune"]
    assert boxes["new head"].line.color == plots.HEAD_COLOR
    assert boxes["new head"].fillcolor not in trainable | {plots.FROZEN_FILL}
    texts = annotation_texts(fig)
    assert sum("frozen" in t for t in texts) == 2
    assert not any(ord(ch) > 0x2FFF for t in texts for ch in t)  # no emoji: a machine without an emoji font shows boxes
    assert any("layer4" in t and "8.4M" in t for t in texts)
    trainable_n = sum(params[2:]) + 5_130
    total = sum(params) + 5_130
    sub = fig.layout.title.subtitle.text
    assert sub == f"trainable: {plots.format_params(trainable_n)} of {plots.format_params(total)} (99%)"
    assert sub == "trainable: 11M of 11M (99%)"
    assert "k=2" in fig.layout.title.text
    # boxes run left to right in one row
    xs = [float(boxes[n].path.split()[1]) for n in names]
    assert xs == sorted(xs)


def test_block_diagram_modes():
    names = ["stem", "stage1", "stage2", "stage3"]
    params = [1000, 20_000, 300_000, 4_000_000]
    frozen = plots.block_diagram(names, params, freeze_depth=1, mode="frozen", head_params=12_810)
    serialisable(frozen)
    assert all(_boxes(frozen)[n].fillcolor == plots.FROZEN_FILL for n in names)
    assert frozen.layout.title.subtitle.text == "trainable: 12.8K of 4.3M (0.3%)"
    scratch = plots.block_diagram(names, params, freeze_depth=3, mode="scratch", head_params=12_810)
    assert all(_boxes(scratch)[n].fillcolor != plots.FROZEN_FILL for n in names)
    assert all(_boxes(scratch)[n].line.color == MODE_COLORS["scratch"] for n in names)
    assert scratch.layout.title.subtitle.text.endswith("(100%)")
    assert not any("frozen" in t for t in annotation_texts(scratch))
    # depth beyond the backbone is clamped; a head already listed is drawn as the head
    ft = plots.block_diagram(names + ["head"], params + [500], freeze_depth=99, mode="finetune")
    boxes = _boxes(ft)
    assert list(boxes) == names + ["head"]
    assert all(boxes[n].fillcolor == plots.FROZEN_FILL for n in names)
    assert boxes["head"].line.color == plots.HEAD_COLOR
    with pytest.raises(ValueError):
        plots.block_diagram(names, params[:2], 1, "finetune")


@pytest.mark.parametrize("n_blocks", [4, 9, 13, 25])
def test_block_diagram_wraps_and_stays_readable(n_blocks):
    names = ["embeddings"] + [f"layer{i}" for i in range(n_blocks - 1)]
    fig = plots.block_diagram(names, [7_000_000] * n_blocks, freeze_depth=n_blocks // 2, mode="finetune")
    serialisable(fig)
    boxes = _boxes(fig)
    assert len(boxes) == n_blocks + 1
    rows = sorted({round(float(s.path.split()[2]), 3) for s in boxes.values()})
    per_row = max(sum(1 for s in boxes.values() if round(float(s.path.split()[2]), 3) == y) for y in rows)
    assert per_row <= 8
    assert len(rows) == (1 if n_blocks + 1 <= 8 else -(-(n_blocks + 1) // 8))
    assert sum(s.fillcolor == plots.FROZEN_FILL for s in boxes.values()) == n_blocks // 2
    wraps = [s for s in fig.layout.shapes if s.name == "wrap"]
    assert len(wraps) == len(rows) - 1
    assert fig.layout.height >= 250 + 100 * (len(rows) - 1)


# ---------------------------------------------------------------- report


def test_best_by_mode_latest_completed():
    runs = [
        make_run("f1", "frozen", 0.9, created="2026-11-27T10:00:00"),
        make_run("f2", "frozen", 0.8, created="2026-11-27T12:00:00"),
        make_run("t1", "finetune", 0.7),
        make_run("t2", "finetune", None, status="running", created="2026-11-29T00:00:00"),
        make_run("s1", "scratch", 0.5, status="cancelled"),
    ]
    assert report.best_by_mode(runs) == {"frozen": 0.8, "finetune": 0.7}
    assert report.best_by_mode([]) == {}


def test_gap_sentence_positive_names_best_mode():
    runs = [make_run("f", "frozen", 0.86), make_run("t", "finetune", 0.88), make_run("s", "scratch", 0.55)]
    s = report.gap_sentence(runs)
    assert "over training from scratch" in s
    assert "+33 points" in s
    assert "25 labels per class" in s
    assert "frozen 86%" in s and "fine-tuned 88%" in s and "scratch 55%" in s
    assert "(fine-tuned)" in s


def test_gap_sentence_uses_rounded_percentages():
    runs = [make_run("f", "frozen", 0.864), make_run("s", "scratch", 0.555)]
    s = report.gap_sentence(runs)
    assert "frozen 86%" in s and "scratch 56%" in s and "+30 points" in s


def test_gap_sentence_negative_transfer_is_honest():
    runs = [make_run("f", "frozen", 0.52), make_run("t", "finetune", 0.50), make_run("s", "scratch", 0.55)]
    s = report.gap_sentence(runs)
    assert "over training from scratch" in s
    assert "\u22123 points" in s and "+" not in s
    assert "domain mismatch" in s and "did not help" in s


def test_gap_sentence_missing_runs_and_unknown_lpc():
    only_pre = report.gap_sentence([make_run("t", "finetune", 0.88)])
    assert "Run a from-scratch baseline to measure the gain over training from scratch." in only_pre
    assert "88%" in only_pre
    only_scratch = report.gap_sentence([make_run("s", "scratch", 0.55)])
    assert "over training from scratch" in only_scratch and "55%" in only_scratch
    assert "over training from scratch" in report.gap_sentence([])
    r1, r2 = make_run("f", "frozen", 0.8), make_run("s", "scratch", 0.6)
    for r in (r1, r2):
        del r["config"]["labels_per_class"]
    s = report.gap_sentence([r1, r2])
    assert "+20 points over training from scratch" in s and "labels per class" not in s


def test_gap_sentence_compares_like_with_like():
    runs = [
        make_run("f5", "frozen", 0.6, lpc=5, created="2026-11-27T10:00:00"),
        make_run("s5", "scratch", 0.3, lpc=5, created="2026-11-27T10:01:00"),
        make_run("f100", "frozen", 0.9, lpc=100, created="2026-11-27T11:00:00"),  # no scratch at 100
    ]
    s = report.gap_sentence(runs)
    assert "+30 points over training from scratch with 5 labels per class" in s


def test_describe_freeze():
    names = ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert report.describe_freeze(names, 3, "finetune") == "Blocks stem…stage2 frozen, stage3…head train."
    assert report.describe_freeze(names, 1, "finetune") == "Block stem frozen, stage1…head train."
    assert report.describe_freeze(names, 0, "finetune") == "No blocks frozen: stem…head all train."
    assert report.describe_freeze(names, 2, "frozen") == "Blocks stem…stage4 frozen; only the head trains."
    assert "random" in report.describe_freeze(names, 2, "scratch")
    assert report.describe_freeze(names + ["classifier"], 9, "finetune") == (
        "Blocks stem…stage4 frozen; only the classifier trains."
    )
