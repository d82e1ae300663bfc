"""Plots and report text are pure functions of run records: checked here without any UI."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

from tl_core.engine.plan import plan_run
from tl_core.models.backbones import describe as backbones_info
from tl_core.presentation import blocks, plots, report
from tl_core.presentation.plots import MODE_COLORS, MODE_LABELS

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
    seed: int = 0,
    test: float | None = None,
    health: list[dict] | None = None,
    budget: str | None = None,
) -> dict:
    summary = {}
    if status == "completed":
        summary = {
            "best_val_acc": best,
            "final_val_acc": best,
            "test_acc": best if test is None else test,
            "health": health or [],
            "freeze_depth": k,
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
            "seed": seed,
            "pretrained": mode != "scratch",
            "budget": budget,
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
    code = "import sys, tl_core.presentation.plots, tl_core.presentation.report; print('streamlit' in sys.modules)"
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


def test_curve_legends_sit_below_the_epoch_axis_title():
    """Anchored to the figure's bottom edge with room above it for the tick labels and the axis title: a legend
    placed in plot coordinates (y = -0.2) lands on "epoch" when the plot is short."""
    runs = [make_run(f"r{i}", mode, 0.8) for i, mode in enumerate(["frozen", "finetune", "scratch", "scratch", "finetune"])]
    for fig in (plots.learning_curves(make_history(3), "finetune"), plots.overlay_curves(runs),
                plots.mode_curves(runs)):
        legend = fig.layout.legend
        assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == ("h", "container", 0, "bottom")
        assert fig.layout.margin.b >= 80 + 28  # tick labels and axis title, then one legend row at least
    overlay = plots.overlay_curves(runs)
    assert overlay.layout.margin.b == 80 + 28 * 3  # five run labels: three rows of two
    assert overlay.layout.height - overlay.layout.margin.b - overlay.layout.margin.t >= 250  # the plot keeps its room


def test_overlay_curves_empty():
    fig = plots.overlay_curves([])
    serialisable(fig)
    assert len(fig.data) == 0 and annotation_texts(fig)


# ---------------------------------------------------------------- transfer gap


ONE_CLASS = [{"code": "one_class", "message": "90% of the held-out items are predicted as one class",
              "advice": "train longer"}]


def test_transfer_gap_bars_single_lpc_with_error_bars_over_seeds():
    runs = [make_run(f"f{s}", "frozen", 0.80, seed=s, test=t) for s, t in enumerate((0.84, 0.86, 0.88))]
    runs += [make_run("t3", "finetune", 0.70, k=3, test=0.95), make_run("t5", "finetune", 0.90, k=5, test=0.88)]
    runs += [make_run("s1", "scratch", 0.50, test=0.55), make_run("s2", "scratch", None, status="running")]
    fig = plots.transfer_gap(runs)
    serialisable(fig)
    assert all(isinstance(t, go.Bar) for t in fig.data)
    assert [t.meta for t in fig.data] == ["frozen", "finetune", "scratch"]
    # fine-tuning: the depth validation picked (k=5), not the best test accuracy (k=3)
    assert fig.data[1].name == "Fine-tune (k=5)<br>(trained to convergence)" and fig.data[1].y[0] == pytest.approx(0.88)
    assert fig.data[0].y[0] == pytest.approx(0.86) and fig.data[0].error_y.array[0] == pytest.approx(0.02)
    assert fig.data[0].error_y.visible and fig.data[0].text[0] == "86% \u00b1 2"
    assert fig.data[2].name == "From scratch<br>(trained to convergence)"
    assert [t.marker.color for t in fig.data] == [MODE_COLORS[m] for m in ("frozen", "finetune", "scratch")]
    assert fig.layout.yaxis.tickformat == ".0%" and "test accuracy" in fig.layout.yaxis.title.text
    lines = chance_lines(fig)
    assert len(lines) == 1 and lines[0].y0 == pytest.approx(0.25)
    assert "animals" in fig.layout.title.text and "mobilenet_v2" in fig.layout.title.text
    assert "25 labels per class" in fig.layout.title.subtitle.text and "3 seeds" in fig.layout.title.subtitle.text


def test_transfer_gap_marks_an_unhealthy_baseline():
    runs = [make_run("f", "frozen", 0.8), make_run("s", "scratch", 0.1, health=ONE_CLASS)]
    fig = plots.transfer_gap(runs)
    scratch = next(t for t in fig.data if t.meta == "scratch")
    assert scratch.marker.pattern.shape == "/" and "unhealthy" in scratch.text[0]


def test_transfer_gap_lines_over_labels_per_class_mark_the_crossover():
    runs = []
    for lpc, (fz, ft, sc) in {5: (0.6, 0.55, 0.3), 25: (0.86, 0.88, 0.87), 100: (0.9, 0.95, 0.97)}.items():
        runs += [make_run(f"f{lpc}", "frozen", fz, lpc=lpc), make_run(f"t{lpc}", "finetune", ft, lpc=lpc),
                 make_run(f"s{lpc}", "scratch", sc, lpc=lpc)]
    runs.append(make_run("x", "scratch", None, lpc=10, status="failed"))  # not a data point
    for fig in (plots.transfer_gap(runs), plots.data_efficiency(runs)):
        serialisable(fig)
        assert all(isinstance(t, go.Scatter) for t in fig.data) and len(fig.data) == 3
        by_mode = {t.meta: t for t in fig.data}
        assert list(by_mode["scratch"].x) == [5, 25, 100]
        assert list(by_mode["scratch"].y) == pytest.approx([0.3, 0.87, 0.97])
        assert list(by_mode["finetune"].y) == pytest.approx([0.55, 0.88, 0.95])
        assert "labels per class" in fig.layout.xaxis.title.text and fig.layout.xaxis.type == "log"
        # scratch catches frozen from 25 labels per class on, fine-tuning only at 100
        marks = {s.x0 for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dot"}
        assert marks == {25, 100}
        assert any("scratch catches feature extraction" in t for t in annotation_texts(fig))


def test_crossover_needs_scratch_to_stay_ahead():
    from tl_core.runs import comparison

    runs = []
    for lpc, (fz, sc) in {5: (0.6, 0.7), 10: (0.7, 0.6), 50: (0.8, 0.85)}.items():
        runs += [make_run(f"f{lpc}", "frozen", fz, lpc=lpc), make_run(f"s{lpc}", "scratch", sc, lpc=lpc)]
    assert comparison.crossover(comparison.cells(runs), "frozen") == 50
    assert comparison.crossover(comparison.cells(runs), "finetune") is None


def test_transfer_gap_no_completed_runs():
    fig = plots.transfer_gap([make_run("r", "frozen", None, status="running", history=[])])
    serialisable(fig)
    assert len(fig.data) == 0 and annotation_texts(fig)


def test_runs_without_a_test_accuracy_take_no_part():
    old = make_run("old", "frozen", 0.9)
    del old["summary"]["test_acc"]  # a record without a test accuracy
    assert plots.transfer_gap([old]).data == ()
    assert "No completed runs with a test accuracy" in report.gap_sentence([old])


# ---------------------------------------------------------------- freeze sweep


def test_freeze_sweep_fine_tune_line_with_frozen_and_scratch_references():
    runs = [make_run(f"t{k}-{s}", "finetune", 0.80 + 0.01 * k, k=k, seed=s, test=0.80 + 0.01 * k + 0.02 * s)
            for k in (0, 2, 4, 6) for s in (0, 1)]
    runs += [make_run("f", "frozen", 0.7, k=9), make_run("s", "scratch", 0.5, k=0)]
    fig = plots.freeze_sweep(runs)
    serialisable(fig)
    by_mode = {t.meta: t for t in fig.data}
    assert set(by_mode) == {"frozen", "finetune", "scratch"}
    assert list(by_mode["finetune"].x) == [0, 2, 4, 6]
    assert list(by_mode["finetune"].y) == pytest.approx([0.81, 0.83, 0.85, 0.87])
    assert by_mode["finetune"].error_y.visible
    assert list(by_mode["scratch"].x) == [0, 6] and list(by_mode["scratch"].y) == [0.5, 0.5]
    assert by_mode["scratch"].line.dash == "dot" == by_mode["frozen"].line.dash
    for m, t in by_mode.items():
        assert t.line.color == MODE_COLORS[m]
    assert list(fig.layout.xaxis.tickvals) == [0, 2, 4, 6]
    lines = chance_lines(fig)
    assert len(lines) == 1 and lines[0].y0 == pytest.approx(0.25)


def test_gap_and_sweep_read_the_depth_from_each_runs_plan():
    """A surgical fine-tune is labelled by what its plan trains and stays off the freeze-depth axis; a plain one is
    placed at its plan's depth even where its summary says otherwise."""
    from tl_core.presentation.report import cell_words
    from tl_core.runs import comparison

    info = backbones_info("mobilenet_v2")
    surgical = make_run("s1", "finetune", 0.8, k=0)
    surgical["config"].update(recipe="surgical", surgical_block=3)
    surgical["plan"] = plan_run("finetune", None, info, 4, recipe="surgical", surgical_block=3).to_dict()
    plain = make_run("p1", "finetune", 0.7, k=0)  # a summary that disagrees with the plan: the plan wins
    plain["plan"] = plan_run("finetune", 5, info, 4).to_dict()
    cells = {c.runs[-1]["run_id"]: c for c in comparison.cells([surgical, plain])}
    assert cell_words(cells["s1"]) == f"fine-tuned (tunes {info['blocks'][3]} only)"
    assert cells["s1"].depth is None and cells["p1"].depth == 5 and cells["p1"].depth_label == "k=5"
    sweep = plots.freeze_sweep([surgical, plain])
    assert list(next(t for t in sweep.data if t.meta == "finetune").x) == [5]


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


def _plan(names, params, depth, mode, head):
    info = {"name": "test", "family": "vision", "blocks": names, "block_params": params, "feature_dim": 1}
    plan = plan_run(mode, depth, info, 2)
    return dataclasses.replace(plan, head_params=head)


def test_block_diagram_finetune_frozen_first_k():
    names = ["stem", "layer1", "layer2", "layer3", "layer4"]
    params = [9_536, 147_968, 525_568, 2_099_712, 8_393_728]
    fig = blocks.block_diagram(_plan(names, params, 2, "finetune", 5_130))
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
    frozen = blocks.block_diagram(_plan(names, params, 1, "frozen", 12_810))
    serialisable(frozen)
    assert all(_boxes(frozen)[n].fillcolor == plots.FROZEN_FILL for n in names)
    assert frozen.layout.title.subtitle.text == "trainable: 12.8K of 4.3M (0.3%)"
    scratch = blocks.block_diagram(_plan(names, params, 3, "scratch", 12_810))
    assert all(_boxes(scratch)[n].fillcolor != plots.FROZEN_FILL for n in names)
    assert all(_boxes(scratch)[n].line.color == MODE_COLORS["scratch"] for n in names)
    assert scratch.layout.title.subtitle.text.endswith("(100%)")
    assert not any("frozen" in t for t in annotation_texts(scratch))
    # a block named like a head ("fc", "head") is still a backbone block: the new head is always its own box
    ft = blocks.block_diagram(_plan(names + ["fc"], params + [500], 5, "finetune", 10))
    boxes = _boxes(ft)
    assert list(boxes) == names + ["fc", "new head"]
    assert all(boxes[n].fillcolor == plots.FROZEN_FILL for n in names + ["fc"])
    assert boxes["new head"].line.color == plots.HEAD_COLOR


@pytest.mark.parametrize("n_blocks", [4, 9, 13, 25])
def test_block_diagram_wraps_and_stays_readable(n_blocks):
    names = ["embeddings"] + [f"layer{i}" for i in range(n_blocks - 1)]
    fig = blocks.block_diagram(_plan(names, [7_000_000] * n_blocks, n_blocks // 2, "finetune", 100))
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


def test_gap_sentence_positive_names_best_mode():
    runs = [make_run("f", "frozen", 0.86), make_run("t", "finetune", 0.88, k=5), make_run("s", "scratch", 0.55)]
    reading = report.read_gap(runs)
    assert reading.ok and reading.text == ("With 25 labels per class, fine-tuning the pretrained network (k=5) reaches "
                                           "88% and training from scratch 55%: transfer gains 33 points over "
                                           "training from scratch (1 seed).")
    assert reading.detail == ("Test accuracy at the epoch validation chose, one seed: frozen 86%, fine-tuned (k=5) "
                              "88%, scratch 55%.")


def test_gap_sentence_quotes_the_spread_over_seeds():
    runs = []
    for seed, (f, sc) in enumerate([(0.80, 0.50), (0.84, 0.60), (0.88, 0.58)]):
        runs += [make_run(f"f{seed}", "frozen", f, seed=seed), make_run(f"s{seed}", "scratch", sc, seed=seed)]
    s = report.gap_sentence(runs)
    # gaps per seed: 30, 24, 30 -> mean 28 (84 - 56), std 3.5
    assert "pretrained features (frozen) reach 84% and training from scratch 56%: transfer gains 28 points" in s
    assert "(3 seeds, \u00b1 3)" in s
    assert "mean \u00b1 std over 3 seeds" in s and "frozen 84% \u00b1 4" in s and "scratch 56% \u00b1 5" in s


def test_gap_sentence_uses_rounded_percentages():
    runs = [make_run("f", "frozen", 0.864), make_run("s", "scratch", 0.555)]
    s = report.gap_sentence(runs)
    assert "reach 86% and training from scratch 56%: transfer gains 30 points" in s


def test_gap_sentence_negative_transfer_is_honest():
    runs = [make_run("f", "frozen", 0.52), make_run("t", "finetune", 0.50), make_run("s", "scratch", 0.55)]
    s = report.gap_sentence(runs)
    assert "transfer loses 3 points against training from scratch" in s and "+" not in s
    assert "domain mismatch" in s and "negative transfer" in s


def test_gap_sentence_never_reads_an_unhealthy_baseline():
    runs = [make_run("f", "frozen", 0.8), make_run("s", "scratch", 0.1, health=ONE_CLASS)]
    s = report.gap_sentence(runs)
    assert "is not a result" in s and "predicted as one class" in s and "Train longer" in s
    assert "points" not in s and "over training from scratch" in s


def test_gap_sentence_reads_a_baseline_that_could_not_learn_as_a_result():
    """Trained to convergence and still one class: a finding about the data, read aloud with the gap."""
    cannot = [{"code": "cannot_learn", "message": "it could not learn this task from these labels",
               "advice": "a result about the data", "result": True}]
    runs = [make_run("f", "frozen", 0.85), make_run("s", "scratch", 0.5, health=cannot, budget="converge")]
    reading = report.read_gap(runs)
    assert reading.ok and "training from scratch 50%, which could not learn this task from 25 labels per class " \
        "even trained to convergence: transfer gains 35 points" in reading.text


def test_gap_sentence_prefers_the_baseline_trained_to_convergence():
    runs = [make_run("f", "frozen", 0.8), make_run("short", "scratch", 0.3, budget="fixed"),
            make_run("fair", "scratch", 0.6, budget="converge", created="2026-11-27T20:00:00")]
    s = report.gap_sentence(runs)
    assert "gains 20 points" in s and "same short budget" not in s
    only_short = report.gap_sentence(runs[:2])
    assert "training from scratch (same short budget) 30%: transfer gains 50 points" in only_short


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
    assert s.startswith("With every label, ") and "gains 20 points" in s and "labels per class" not in s


def test_gap_sentence_compares_like_with_like():
    runs = [
        make_run("f5", "frozen", 0.6, lpc=5, created="2026-11-27T10:00:00"),
        make_run("s5", "scratch", 0.3, lpc=5, created="2026-11-27T10:01:00"),
        make_run("f100", "frozen", 0.9, lpc=100, created="2026-11-27T11:00:00"),  # no scratch at 100
    ]
    s = report.gap_sentence(runs)
    assert s.startswith("With 5 labels per class, ") and "gains 30 points" in s


def test_gap_sentence_after_a_depth_sweep_names_the_fine_tune_validation_picked():
    """The latest fine-tune (k=9) must not stand in for the best one validation picked (k=5)."""
    runs = [make_run("f", "frozen", 0.85, test=0.853), make_run("s", "scratch", 0.54)]
    runs += [make_run(f"t{k}", "finetune", v, k=k, created=f"2026-11-28T0{i}:00:00")
             for i, (k, v) in enumerate([(0, 0.90), (3, 0.92), (5, 0.943), (7, 0.93), (9, 0.80)])]
    s = report.gap_sentence(runs)
    assert "fine-tuning the pretrained network (k=5) reaches 94%" in s and "gains 40 points" in s
    assert "fine-tuned (k=5) 94%" in s and "frozen 85%" in s and "k=9" not in s


def test_the_plan_says_what_trains():
    names = ["stem", "stage1", "stage2", "stage3", "stage4"]
    sentence = lambda depth, mode: _plan(names, [1] * 5, depth, mode, 1).sentence()  # noqa: E731
    assert sentence(3, "finetune") == "Blocks stem…stage2 frozen, stage3…stage4 and the new head train."
    assert sentence(1, "finetune") == "Block stem frozen, stage1…stage4 and the new head train."
    assert sentence(0, "finetune") == "No blocks frozen: stem…new head all train from the pretrained weights."
    assert sentence(None, "frozen") == "Blocks stem…stage4 frozen; only the new head trains."
    assert "random" in sentence(None, "scratch")


def test_efficiency_sentence_names_the_crossover():
    runs = []
    for lpc, (fz, ft, sc) in {5: (0.6, 0.55, 0.3), 25: (0.86, 0.88, 0.87), 100: (0.9, 0.95, 0.93)}.items():
        runs += [make_run(f"f{lpc}", "frozen", fz, lpc=lpc), make_run(f"t{lpc}", "finetune", ft, lpc=lpc),
                 make_run(f"s{lpc}", "scratch", sc, lpc=lpc)]
    s = report.efficiency_sentence(runs)
    assert s.startswith("Training from scratch catches feature extraction from 25 labels per class on")
    assert "domain mismatch" in s and "negative transfer" in s and "stays ahead up to 100" in s
    ahead = [r for r in runs if r["config"]["mode"] != "scratch"] + [
        make_run(f"s{n}", "scratch", 0.1, lpc=n) for n in (5, 25, 100)]
    assert "stay ahead of training from scratch at every labels-per-class value measured (5 to 100)" in \
        report.efficiency_sentence(ahead)
    assert "two or more labels-per-class values" in report.efficiency_sentence(runs[:3])


def test_efficiency_sentence_reads_no_crossover_off_a_short_budget():
    """"Scratch catches fine-tune" is said only where both arms trained to convergence."""
    runs = []
    for lpc, (fz, ft, sc) in {5: (0.6, 0.55, 0.3), 25: (0.86, 0.6, 0.87)}.items():
        runs += [make_run(f"f{lpc}", "frozen", fz, lpc=lpc), make_run(f"t{lpc}", "finetune", ft, lpc=lpc),
                 make_run(f"s{lpc}", "scratch", sc, lpc=lpc, budget="fixed")]
    s = report.efficiency_sentence(runs)
    assert "no crossover is read" in s and "catches" not in s
    for r in runs:
        if r["config"]["mode"] == "scratch":
            r["summary"]["budget"] = "converge"
        if r["config"]["mode"] == "finetune":
            r["summary"]["budget"] = "fixed"  # the fine-tune arm stopped early: it is not said to be caught
    s = report.efficiency_sentence(runs)
    assert "catches feature extraction from 25" in s and "catches fine-tuning" not in s


def test_missing_configs_skip_what_the_store_already_answered():
    from tl_core.runs import sweep
    from tl_core.config import TrainConfig

    base = TrainConfig(data="builtin:animals", image_size=64)
    configs = sweep.efficiency_configs(base, max_per_class=30, seeds=2, depth=5)
    assert sorted({c.labels_per_class for c in configs}) == [5, 10, 25]
    assert len(configs) == 3 * 3 * 2 and {c.budget for c in configs} == {None}
    assert {c.image_size for c in configs} == {sweep.LESSON_IMAGE_SIZE}  # every arm converges: a lesson's size
    done = make_run("f", "frozen", 0.8, lpc=10)
    done["config"] = {**configs[2].to_dict(), "mode": "frozen", "seed": 0, "freeze_depth": None}
    done["config"]["labels_per_class"] = 5
    left = sweep.missing(configs, [done])
    assert len(left) == len(configs) - 1
    assert not any(c.mode == "frozen" and c.labels_per_class == 5 and c.seed == 0 for c in left)


def test_gap_sentence_with_seeds_on_one_side_names_each_count():
    """The classroom demo: feature extraction over three seeds, one from-scratch run."""
    runs = [make_run(f"f{s}", "frozen", v, seed=s) for s, v in enumerate((0.82, 0.84, 0.86))]
    runs.append(make_run("s0", "scratch", 0.54, budget="fixed"))
    s = report.gap_sentence(runs)
    assert "training from scratch (same short budget) 54%: transfer gains 30 points over training from scratch " \
        "(3 seeds against 1)" in s
    assert "frozen 84% \u00b1 2 (3 seeds)" in s and "scratch (same budget) 54% (1 seed)" in s


def test_a_sweep_cut_short_says_how_many_seeds_each_point_has():
    """After a cancel some points have 2 seeds and others 3: the subtitle must not claim 3 for all."""
    runs = []
    for lpc in (5, 10):
        seeds = 3 if lpc == 5 else 2
        for s in range(seeds):
            runs += [make_run(f"f{lpc}{s}", "frozen", 0.7, lpc=lpc, seed=s),
                     make_run(f"s{lpc}{s}", "scratch", 0.4, lpc=lpc, seed=s)]
    subtitle = plots.data_efficiency(runs).layout.title.subtitle.text
    assert "2\u20133 seeds" in subtitle and "over 3 seeds" not in subtitle


def test_the_efficiency_axis_ends_at_the_data():
    runs = [make_run(f"{m}{lpc}", m, 0.6, lpc=lpc) for lpc in (5, 10, 25) for m in ("frozen", "scratch")]
    low, high = plots.data_efficiency(runs).layout.xaxis.range
    assert math.log10(5) - 0.15 < low < math.log10(5) and math.log10(25) < high < math.log10(25) + 0.15


def test_the_gap_chart_names_chance_in_its_subtitle_not_over_a_bar():
    runs = [make_run("f", "frozen", 0.86), make_run("t", "finetune", 0.88, k=5), make_run("s", "scratch", 0.55)]
    fig = plots.transfer_gap(runs)
    assert not any("chance" in (a.text or "") for a in fig.layout.annotations)
    assert "dashed line: chance (25%)" in fig.layout.title.subtitle.text
    assert any(shape.y0 == pytest.approx(0.25) for shape in fig.layout.shapes)
