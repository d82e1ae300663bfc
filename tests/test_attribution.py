"""Why a model decided (tl_core.engine.attribution, tl_core.runs.explain, the `explain` CLI, the plots).

Known results first: on a network that ends in global average pooling and one linear layer, Grad-CAM equals the
class activation map of Zhou et al. (2016), which can be computed by hand (Selvaraju et al. 2017, section 3.1);
on a hand-built network whose class evidence sits in a known corner, the map must peak in that corner; integrated
gradients must add up to the change in log-probability (completeness). Then the engine on real small runs, the CLI
contract and the bad inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tl_core import cli
from tl_core.config import TrainConfig
from tl_core.engine import attribution
from tl_core.engine.attribution import AttributionError
from tl_core.models.model import Block, Preprocess, TransferModel
from tl_core.presentation import attribution_plots
from tl_core.runs import explain, run_select

ROOT = Path(__file__).resolve().parents[1]
RED, GREEN = 0, 1


# ---- hand-built networks ---------------------------------------------------------------------------------------------
class _Net(nn.Module):
    """conv 4x4 stride 4 (a 32 px image becomes an 8x8 map) -> ReLU -> global average pool -> fc."""

    def __init__(self, conv_weight: torch.Tensor, fc_weight: torch.Tensor):
        super().__init__()
        self.conv = nn.Conv2d(3, conv_weight.shape[0], kernel_size=4, stride=4, bias=False)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(conv_weight.shape[0], fc_weight.shape[0])
        with torch.no_grad():
            self.conv.weight.copy_(conv_weight)
            self.fc.weight.copy_(fc_weight)
            self.fc.bias.zero_()


def tiny_model(conv_weight: torch.Tensor, fc_weight: torch.Tensor) -> TransferModel:
    net = _Net(conv_weight, fc_weight)
    blocks = [Block("conv", ["conv"], nn.Sequential(net.conv, net.relu))]
    neck = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return TransferModel(name="tiny", family="vision", net=net, blocks=blocks, neck=neck, head_path="fc",
                         feature_dim=conv_weight.shape[0],
                         preprocess=Preprocess("vision", image_size=32, mean=[0, 0, 0], std=[1, 1, 1])).eval()


def colour_detector() -> TransferModel:
    """Channel 0 fires on red pixels, channel 1 on green ones; class 0 reads channel 0, class 1 channel 1."""
    w = torch.zeros(2, 3, 4, 4)
    w[0, 0], w[0, 1], w[0, 2] = 1.0, -1.0, -1.0
    w[1, 1], w[1, 0], w[1, 2] = 1.0, -1.0, -1.0
    return tiny_model(w / 16, torch.eye(2) * 4)


def two_squares() -> np.ndarray:
    """Black 32x32, a red square in the top-left corner, a smaller green square in the bottom-right one."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[0:8, 0:8, RED] = 255
    img[24:32, 28:32, GREEN] = 255
    return img


def test_the_map_peaks_where_the_class_evidence_is():
    model, img = colour_detector(), two_squares()
    red = attribution.grad_cam(model, img, ["red", "green"], target="red")
    green = attribution.grad_cam(model, img, ["red", "green"], target="green")
    assert red.block == "conv" and red.cam.shape == (8, 8) and red.heatmap.shape == (32, 32)
    # at the block's resolution: evidence exactly in the cells the squares cover, nothing elsewhere
    assert np.flatnonzero(red.cam.ravel() > 0).tolist() == [0, 1, 8, 9]
    assert np.flatnonzero(green.cam.ravel() > 0).tolist() == [55, 63]
    # upsampled to the image: the peak inside the square, the opposite corner empty
    ry, rx = np.unravel_index(np.argmax(red.heatmap), red.heatmap.shape)
    gy, gx = np.unravel_index(np.argmax(green.heatmap), green.heatmap.shape)
    assert ry < 8 and rx < 8 and gy >= 24 and gx >= 28
    assert red.heatmap.max() == pytest.approx(1.0) and red.heatmap[16:, 16:].max() == 0
    assert green.heatmap[:16, :16].max() == 0
    # the red square is four times the green one: the model predicts red
    assert red.predicted_class == green.predicted_class == "red"
    assert red.probabilities.sum() == pytest.approx(1.0, abs=1e-6)


def test_grad_cam_equals_the_hand_computed_cam_of_a_pooled_linear_network():
    """For features A_k (h x w), global average pooling and a linear layer W, the gradient of class c's score with
    respect to A_k is W[c,k] / (h w) everywhere, so Grad-CAM = ReLU(sum_k W[c,k] / (h w) * A_k): the CAM of
    Zhou et al. 2016, up to the constant."""
    gen = torch.Generator().manual_seed(0)
    model = tiny_model(torch.randn(6, 3, 4, 4, generator=gen), torch.randn(4, 6, generator=gen))
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        a = model._blocks[0].forward(model.normalize(torch.from_numpy(img).permute(2, 0, 1)[None]))[0].numpy()
    w = model.get_head().weight.detach().numpy()
    for c in range(4):
        expected = np.maximum(np.tensordot(w[c], a, axes=1) / a[0].size, 0)
        result = attribution.grad_cam(model, img, list("abcd"), target=c)
        np.testing.assert_allclose(result.cam, expected, rtol=1e-4, atol=1e-6)
        assert result.target == c


def test_an_explanation_leaves_the_model_as_it_found_it():
    model = colour_detector().train()
    model.net.conv.weight.requires_grad_(False)
    attribution.grad_cam(model, two_squares(), ["red", "green"])
    assert model.training and model.net.fc.weight.requires_grad and not model.net.conv.weight.requires_grad
    assert model.net.conv.weight.grad is None and model.net.fc.weight.grad is None  # no weight gradients made


def test_maps_are_drawn_min_max_scaled():
    np.testing.assert_allclose(attribution.scale(np.array([[1.0, 2.0], [3.0, 5.0]])), [[0, 0.25], [0.5, 1]])
    assert attribution.scale(np.zeros((2, 2))).max() == 0  # no evidence: nothing drawn
    assert attribution.scale(np.full((2, 2), 0.3)).min() == 1  # the same everywhere: no place stands out


def test_targets_blocks_and_inputs_are_checked():
    model, img = colour_detector(), two_squares()
    with pytest.raises(AttributionError, match="unknown class 'blue'"):
        attribution.grad_cam(model, img, ["red", "green"], target="blue")
    with pytest.raises(AttributionError, match="out of range"):
        attribution.grad_cam(model, img, ["red", "green"], target=5)
    with pytest.raises(AttributionError, match="no block 'layer9'"):
        attribution.grad_cam(model, img, ["red", "green"], block="layer9")
    with pytest.raises(AttributionError, match="RGB uint8"):
        attribution.grad_cam(model, img.astype(np.float32), ["red", "green"])
    # any image size goes through the training resize: a 64x48 image becomes the model's 32x32 crop
    big = attribution.grad_cam(model, np.zeros((64, 48, 3), np.uint8), ["red", "green"])
    assert big.image.shape == (32, 32, 3) and big.empty and big.heatmap.max() == 0


def test_the_target_block_is_the_last_with_a_spatial_output():
    from tl_core.models import backbones

    model = backbones.build("mobilenet_v3_small", n_classes=3, pretrained=False, image_size=64).eval()
    spatial = dict(attribution.spatial_blocks(model))
    assert model.block_names[-1] == "fc" and "fc" not in spatial  # its pretrained fc block is not a map
    assert attribution.cam_block(model) == "head_conv" and spatial["head_conv"] == (2, 2)
    assert spatial["stem"] == (32, 32)
    # a network without any spatial block (a ViT-like one): a clear refusal
    flat = tiny_model(torch.ones(2, 3, 4, 4), torch.eye(2))
    flat._blocks[0].forward = nn.Sequential(flat.net.conv, nn.Flatten(1))
    flat.neck = nn.Identity()
    with pytest.raises(AttributionError, match="no convolutional block"):
        attribution.cam_block(flat)


# ---- text: integrated gradients on a tiny BERT ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_text():
    from tl_core.models import backbones

    return backbones.build("all-MiniLM-L6-v2", n_classes=3, pretrained=False, tiny=True, max_length=16).eval()


def test_token_scores_add_up_to_the_change_in_log_probability(tiny_text):
    text = "The film was <b>great</b>!"
    r = attribution.token_attributions(tiny_text, text, ["neg", "neu", "pos"], target="pos")
    # completeness: the scores add up to log p(pos | text) - log p(pos | baseline)
    assert r.gap < 1e-3
    assert r.target_class == "pos" and r.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    # special tokens are left out; each token is the piece of the text it covers
    assert all(text[s:e] == t for t, (s, e) in zip(r.tokens, r.spans))
    assert "[CLS]" not in r.tokens and r.tokens[:3] == ["The", "film", "was"] and len(r.scores) == len(r.tokens)
    assert not r.truncated
    long = attribution.token_attributions(tiny_text, "word " * 40, ["neg", "neu", "pos"])
    assert long.truncated and len(long.tokens) == 14  # 16 positions minus [CLS] and [SEP]


def test_text_and_image_models_refuse_each_others_explanations(tiny_text):
    with pytest.raises(AttributionError, match="text model: class activation maps are for image models"):
        attribution.grad_cam(tiny_text, two_squares(), ["a", "b", "c"])
    with pytest.raises(AttributionError, match="image model: token attributions are for text models"):
        attribution.token_attributions(colour_detector(), "hello", ["red", "green"])
    with pytest.raises(AttributionError, match="type a sentence"):
        attribution.token_attributions(tiny_text, "   ", ["a", "b", "c"])


# ---- plots: pure ------------------------------------------------------------------------------------------------------
def test_cam_panels_show_the_image_then_one_map_per_run_and_empty_panels_for_missing_runs():
    model, img = colour_detector(), two_squares()
    red = attribution.grad_cam(model, img, ["red", "green"])
    fig = attribution_plots.cam_panels([(attribution_plots.cam_title("Frozen", red), red), ("Fine-tune", None),
                                        ("Scratch", red)], image_title="Validation image 0")
    kinds = [t.type for t in fig.data]
    assert kinds == ["image", "image", "heatmap", "image", "heatmap"]
    assert [a.text for a in fig.layout.annotations][:4] == ["Validation image 0", "Frozen<br>red 53%",
                                                           "Fine-tune", "Scratch"]
    assert "no run yet" in [a.text for a in fig.layout.annotations]
    heat = fig.data[2]
    assert np.array_equal(np.asarray(heat.z), red.heatmap) and (heat.zmin, heat.zmax) == (0, 1)
    assert fig.data[2].xaxis == "x2" and fig.data[4].xaxis == "x4"  # each map over its own copy of the image
    other = attribution.grad_cam(model, img, ["red", "green"], target="green")
    assert attribution_plots.cam_title("Frozen", other).endswith("· map for green")


def test_token_html_colours_by_sign_and_escapes_the_text(tiny_text):
    r = attribution.token_attributions(tiny_text, "<script>alert(1)</script> good", ["a", "b", "c"])
    page = attribution_plots.token_html(r)
    assert "<script" not in page and "</script" not in page and page.count("&lt;") == 2  # every < escaped
    assert page.count('class="tl-token"') == len(r.tokens)
    strongest = int(np.argmax(np.abs(r.scores)))
    colour = "0,158,115" if r.scores[strongest] >= 0 else "213,94,0"
    assert f"rgba({colour},0.85)" in page  # the strongest token at full strength, in its sign's colour
    bars = attribution_plots.token_bars(r)
    assert list(bars.data[0].x) == pytest.approx([float(s) for s in r.scores])
    assert bars.data[0].y[0].startswith("1. ")


# ---- run grouping: pure -----------------------------------------------------------------------------------------------
def _run(rid, mode, seed=0, created="2025-01-01T00:00:0", backbone="mobilenet_v2", status="completed", val=20):
    return {"run_id": rid, "status": status, "created_at": created,
            "config": {"data": "builtin:animals", "backbone": backbone, "mode": mode, "seed": seed,
                       "val_per_class": val}}


def test_mode_groups_prefer_the_split_with_all_three_modes_newest_per_mode():
    runs = [_run("f0", "frozen", created="1"), _run("s0", "scratch", created="2"), _run("t0", "finetune", created="3"),
            _run("f1", "frozen", seed=1, created="4"), _run("f2", "frozen", seed=2, created="5"),
            _run("f0b", "frozen", created="6"), _run("bad", "finetune", status="failed", created="7"),
            _run("r", "frozen", backbone="resnet18", created="8")]
    groups = run_select.mode_groups(runs, data="builtin:animals")
    first = groups[0]
    assert (first.backbone, first.seed) == ("mobilenet_v2", 0) and not first.missing
    assert {m: r["run_id"] for m, r in first.runs.items()} == {"frozen": "f0b", "finetune": "t0", "scratch": "s0"}
    assert [g.runs["frozen"]["run_id"] for g in groups[1:]] == ["r", "f2", "f1"]  # then the newest
    assert groups[1].missing == ["finetune", "scratch"]
    assert run_select.mode_groups(runs, data="builtin:digits") == []


# ---- real runs: engine, CLI, bad input ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A frozen mobilenet_v2 on animals (64 px) and a frozen MiniLM on sentiment, stored as the app stores them."""
    from tl_core.engine.training import train
    from tl_core.runs.store import RunStore

    store = RunStore(tmp_path_factory.mktemp("explain") / "runs.sqlite")
    out = {"store": store}
    for name, cfg in {"vision": dict(data="builtin:animals", backbone="mobilenet_v2", image_size=64),
                      "text": dict(data="builtin:sentiment", backbone="all-MiniLM-L6-v2")}.items():
        result = train(TrainConfig(mode="frozen", epochs=1, labels_per_class=5, val_per_class=3, test_per_class=3,
                                   **cfg), store=store, owner="t")
        assert result.status == "completed"
        out[name] = result.run_id
    return out


@pytest.mark.slow
def test_a_real_run_explains_a_validation_image_as_predict_sees_it(runs):
    from tl_core.runs import artifacts

    store, rid = runs["store"], runs["vision"]
    out = explain.explain_item(store, rid, 4)
    model, meta, run = explain.load_run(store, rid)
    ds, val = explain.validation_set(run["config"])
    assert len(val) == 3 * len(ds.classes) and out["dataset_index"] == int(val[4])
    assert out["true_class"] == ds.classes[ds.labels[val[4]]]
    # the prediction the map explains is the one Predict gives for the same image
    probs = artifacts.predict_proba(model, [ds.images[val[4]]])[0]
    assert out["predicted_class"] == meta["classes"][int(np.argmax(probs))]
    assert out["probability"] == pytest.approx(float(probs.max()), abs=1e-5)
    assert out["block"] == "head_conv" and out["map_size"] == [2, 2] and out["image_size"] == 64
    heat = np.array(out["heatmap"])
    assert heat.shape == (64, 64) and heat.min() >= 0 and heat.max() == pytest.approx(1.0, abs=1e-3)
    finer = explain.explain_item(store, rid, 4, block="stage4", target=out["true_class"])
    assert finer["map_size"] == [4, 4] and finer["target_class"] == out["true_class"]


@pytest.mark.slow
def test_cli_explain_json_for_an_image_run_and_a_text_run(runs):
    store = str(runs["store"].path)
    proc = subprocess.run([sys.executable, "-m", "tl_core", "explain", "--run", runs["vision"], "--item", "0",
                           "--json", "--store", store], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # the whole of stdout is one object
    assert {"run_id", "backbone", "mode", "item", "true_class", "predicted_class", "probability", "block", "cam",
            "heatmap", "correct"} <= set(out)
    assert out["mode"] == "frozen" and out["item"] == 0 and len(out["cam"]) == 2
    assert proc.stderr == ""
    text = "what a wonderful day"
    assert cli.main(["explain", "--run", runs["text"], "--text", text, "--json", "--store", store]) == 0


@pytest.mark.slow
def test_cli_explain_text_output(runs, capsys):
    store = str(runs["store"].path)
    assert cli.main(["explain", "--run", runs["text"], "--text", "a truly awful film", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"run {runs['text']} (all-MiniLM-L6-v2, frozen): predicted ")
    assert [ln.split()[-1] for ln in lines[2:]] == ["a", "truly", "awful", "film"]
    assert cli.main(["explain", "--run", runs["text"], "--text", "a truly awful film", "--json", "--store", store]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["token"] for t in out["tokens"]] == ["a", "truly", "awful", "film"] and out["completeness_gap"] < 1e-2


@pytest.mark.slow
def test_bad_explain_requests_are_one_line_errors(runs, capsys):
    store = runs["store"]
    vision, text = runs["vision"], runs["text"]
    store.create_run("still-running", {"data": "builtin:animals", "backbone": "mobilenet_v2", "mode": "frozen"},
                     owner="t")
    cases = {
        ("--run", vision, "--item", "999"): "validation item 999 is out of range: this run has 30 validation images",
        ("--run", vision, "--item", "-1"): "validation item -1 is out of range",
        ("--run", text, "--item", "0"): "is a text model (all-MiniLM-L6-v2): class activation maps are for image runs",
        ("--run", vision, "--text", "hello"): "is an image model (mobilenet_v2): token attributions are for text runs",
        ("--run", vision): "give exactly one of --item N",
        ("--run", "nope", "--item", "0"): "unknown run 'nope'",
        ("--run", "still-running", "--item", "0"): "is running, not completed",
        ("--run", vision, "--item", "0", "--block", "fc9"): "has no block 'fc9'",
        ("--run", vision, "--item", "0", "--target", "unicorn"): "unknown class 'unicorn'",
        ("--run", text, "--text", " "): "type a sentence",
    }
    for argv, message in cases.items():
        assert cli.main(["explain", *argv, "--store", str(store.path)]) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.startswith("error: ") and message in captured.err, (argv, captured.err)
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err and captured.out == ""
    # a run whose saved model is gone
    weights = store.artifacts_dir(vision, create=False) / "model.safetensors"
    moved = weights.with_suffix(".moved")
    weights.rename(moved)
    try:
        assert cli.main(["explain", "--run", vision, "--item", "0", "--store", str(store.path)]) == 2
        assert "has no saved model" in capsys.readouterr().err
    finally:
        moved.rename(weights)
    # a run on an upload: its images are not stored with it
    upload = dict(store.get_run(vision)["config"], data="upload:pets.zip@1234abcd")
    with pytest.raises(explain.ExplainError, match="trained on an upload"):
        explain.validation_set(upload)


def test_train_command_reproduces_the_split():
    line = explain.train_command({"data": "builtin:animals", "backbone": "mobilenet_v2", "seed": 2,
                                  "val_per_class": 20, "labels_per_class": 25, "image_size": 64, "epochs": 8},
                                 "scratch")
    assert line == ("python -m tl_core train --data builtin:animals --backbone mobilenet_v2 --mode scratch --seed 2 "
                    "--val-per-class 20 --labels-per-class 25 --image-size 64 --epochs 8")
    args = cli.build_parser().parse_args(line.split()[3:])
    assert (args.mode, args.seed, args.val_per_class, args.image_size) == ("scratch", 2, 20, 64)
