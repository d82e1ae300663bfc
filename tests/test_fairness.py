"""The transfer gap is only as honest as its baseline: precise BatchNorm, the test split, health findings, seeds,
reproducibility beside other runs, the linear-probe head, random features as a control, every arm trained to
convergence, and the out-of-distribution copy."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tl_core.engine import health, precise_bn, training
from tl_core.inputs import shifts
from tl_core.config import TrainConfig
from tl_core.runs.jobs import JobManager

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data="builtin:digits", backbone="mobilenet_v2", epochs=2, labels_per_class=8, val_per_class=5,
            test_per_class=5, image_size=32)


# ---- precise BatchNorm ---------------------------------------------------------------------------------------
def test_precise_batchnorm_replaces_lagging_statistics_with_the_data_s():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    data = torch.randn(256, 4) * 3 + 5
    net[1].running_mean.fill_(-100.0)  # stale: what a few optimizer steps leave behind
    batches = list(data.split(64))
    assert precise_bn.recompute(net, batches, net) == 1
    with torch.no_grad():
        h = net[0](data)
    assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-4)
    assert torch.allclose(net[1].running_var, torch.stack([b.var(0) for b in net[0](data).split(64)]).mean(0),
                          rtol=1e-3)
    assert net[1].momentum == 0.1 and net.training  # restored


def test_precise_batchnorm_leaves_frozen_layers_alone():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    for p in net[1].parameters():
        p.requires_grad_(False)
    before = net[1].running_mean.clone()
    assert precise_bn.recompute(net, [torch.randn(16, 4)], net) == 0
    assert torch.equal(before, net[1].running_mean)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scratch_at_ten_labels_per_class_with_precise_batchnorm_spreads_its_predictions(seed):
    """40 optimizer steps from random weights: with BatchNorm's running statistics left as training left them,
    every test item lands in one class; re-estimated, the predictions spread."""
    r = training.train(TrainConfig(data="builtin:animals", backbone="mobilenet_v2", image_size=64, mode="scratch",
                                   labels_per_class=10, seed=seed, budget="fixed", epochs=10))
    predicted = np.array(r.summary["confusion_matrix"]).sum(0)
    # Deterministic runs (one thread each): 10, 7 and 8 classes predicted, the largest taking 27%, 53% and 30% of
    # the 500 test items on seeds 0-2; with BatchNorm's lagging statistics every item lands in one class (100%).
    assert (predicted > 0).sum() >= 6
    assert predicted.max() / predicted.sum() < 0.6
    # 40 steps is the short budget: a run that still leans on one class is flagged as under-trained, never read
    # as a result about the data
    assert all(f["code"] == "one_class" and not f.get("result") for f in r.summary["health"])


# ---- health ---------------------------------------------------------------------------------------------------
def _history(losses, train_acc=0.9):
    return [{"epoch": i + 1, "train_loss": v, "train_acc": train_acc, "val_loss": 1.0, "val_acc": 0.5}
            for i, v in enumerate(losses)]


def test_health_findings():
    y = np.repeat(np.arange(4), 25)
    assert health.check(_history([2.0, 1.0]), y, y, 4) == []
    one = health.check(_history([2.0, 1.0]), y, np.zeros(100, int), 4)
    assert {f["code"] for f in one} == {"one_class", "at_chance"}
    assert all(f["message"] and f["advice"] for f in one)
    assert [f["code"] for f in health.check(_history([1.0, 1.2]), y, y, 4)] == ["loss_flat"]
    assert health.check(_history([0.003, 0.003]), y, y, 4) == []  # a head fitted at once is not a flat run
    assert [f["code"] for f in health.check(_history([1.0, float("nan")]), y, y, 4)] == ["diverged"]
    shuffled = np.where(y == 0, 0, y % 3 + 1)  # class 0 right, the others swapped round: 25% correct, balanced
    chance = health.check(_history([2.0, 1.0]), y, shuffled, 4)
    assert "at_chance" in {f["code"] for f in chance}
    binary = np.repeat([0, 1], 50)
    assert health.check(_history([1.0, 0.5]), binary, np.r_[np.zeros(60, int), np.ones(40, int)], 2) == []


def test_a_head_fitted_to_convergence_is_never_a_flat_run():
    """A convex fit converges in its first slice: its curve is flat because it is done, not because it failed."""
    y = np.repeat(np.arange(2), 50)
    flat = _history([0.40, 0.41, 0.41])
    assert [f["code"] for f in health.check(flat, y, y, 2)] == ["loss_flat"]
    assert health.check(flat, y, y, 2, fitted_head=True) == []


def test_a_collapse_after_a_fair_budget_is_a_result_not_a_broken_run():
    """Under-trained (loss still falling, short budget) is no result; trained to convergence with the loss settled
    and still one class predicted, it is a finding about the data, and the run counts as healthy."""
    y, one = np.repeat(np.arange(2), 50), np.zeros(100, int)
    falling = _history([0.70, 0.69, 0.68, 0.60, 0.50, 0.40], train_acc=0.8)
    settled = _history([0.70, 0.60, 0.50, 0.45, 0.45, 0.45], train_acc=0.8)
    assert "one_class" in {f["code"] for f in health.check(settled, y, one, 2)}  # short budget: no result
    assert "one_class" in {f["code"] for f in health.check(falling, y, one, 2, converge_budget=True)}
    found = health.check(settled, y, one, 2, converge_budget=True)
    assert [f["code"] for f in found] == ["cannot_learn"] and found[0]["result"]
    assert health.healthy({"health": found}) and health.problems(found) == []
    from tl_core.records import RunSummary

    assert RunSummary(health=found).healthy and not RunSummary(health=health.check(settled, y, one, 2)).healthy


def test_a_deliberately_broken_run_is_flagged(store):
    """A learning rate of 9 wrecks any network: the run completes, and says it is not a result."""
    r = training.train(TrainConfig(mode="scratch", lr=9.0, budget="fixed", **TINY), store=store, owner="t")
    assert r.status == "completed"
    codes = {f["code"] for f in r.summary["health"]}
    assert codes & {"diverged", "one_class", "at_chance", "loss_flat"}, r.summary["health"]
    assert store.get_run(r.run_id)["summary"]["health"] == r.summary["health"]


# ---- the test split and selection -------------------------------------------------------------------------------
def test_epoch_chosen_on_validation_and_reported_on_test():
    r = training.train(TrainConfig(mode="finetune", freeze_depth=5, budget="fixed", **{**TINY, "epochs": 4}))
    s, history = r.summary, r.history
    assert s["best_val_acc"] == max(h["val_acc"] for h in history)
    assert history[s["selected_epoch"] - 1]["val_acc"] == s["best_val_acc"]
    assert s["final_val_acc"] == history[-1]["val_acc"]
    assert 0.0 <= s["test_acc"] <= 1.0 and s["n_test"] == 50
    assert sum(map(sum, s["confusion_matrix"])) == 50  # the confusion matrix is the test split's


def test_the_reported_weights_are_the_selected_epoch_s():
    prep = training.prepare(TrainConfig(mode="finetune", freeze_depth=5, budget="fixed", **{**TINY, "epochs": 4}))
    r = training.fit(prep)
    stepper = training.Stepper(prep, cached=False)
    _, val_acc, _ = training.evaluate(stepper, prep.x_val, prep.y_val)
    _, test_acc, _ = training.evaluate(stepper, prep.x_test, prep.y_test)
    assert val_acc == r.summary["best_val_acc"] and test_acc == r.summary["test_acc"]


# ---- seeds and reproducibility -----------------------------------------------------------------------------------
def test_seeds_change_split_and_init_but_a_seed_repeats_exactly():
    a, b = (training.prepare(TrainConfig(mode="scratch", seed=s, **TINY)) for s in (0, 1))
    assert not np.array_equal(a.split.train, b.split.train) and not np.array_equal(a.split.test, b.split.test)
    assert not torch.equal(a.model.get_head().weight, b.model.get_head().weight)
    first = a.model.net.features[0][0].weight
    assert not torch.equal(first, b.model.net.features[0][0].weight)
    again = training.prepare(TrainConfig(mode="scratch", seed=0, **TINY))
    assert torch.equal(first, again.model.net.features[0][0].weight)
    runs = [training.train(TrainConfig(mode="scratch", seed=0, budget="fixed", **TINY)) for _ in range(2)]
    assert runs[0].history == [{**h, "seconds": runs[0].history[i]["seconds"]} for i, h in enumerate(runs[1].history)]


def _without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_a_run_gives_the_same_numbers_alone_and_beside_another(store):
    """The demo's scratch run gave 36.5% one click and 40.5% the next: builds drew from a shared generator."""
    config = TrainConfig(mode="scratch", budget="fixed", **{**TINY, "epochs": 3, "backbone": "efficientnet_b0"})
    alone = training.train(config)
    manager = JobManager(store, max_concurrent=2)
    try:
        beside = manager.submit(config, owner="a")
        other = manager.submit(TrainConfig(mode="finetune", freeze_depth=2, seed=7, budget="fixed", **TINY), owner="b")
        jobs = [manager.wait(j, timeout=600) for j in (beside, other)]
    finally:
        manager.shutdown()
    assert [j.state for j in jobs] == ["completed", "completed"]
    assert _without_seconds(jobs[0].history) == _without_seconds(alone.history)
    assert jobs[0].summary["test_acc"] == alone.summary["test_acc"]


# ---- the frozen head: a tuned linear probe ------------------------------------------------------------------
def test_frozen_head_is_the_cross_validated_logistic_regression():
    """The default frozen run fits what scikit-learn's LogisticRegression fits with the C it chose."""
    from sklearn.linear_model import LogisticRegression

    prep = training.prepare(TrainConfig(mode="frozen", **{**TINY, "labels_per_class": 20, "epochs": 5}))
    r = training.fit(prep)
    assert r.summary["head_solver"] == "lbfgs" and r.summary["head_c"] in training.head_fit.C_GRID
    f_train, f_test = (training._boundary_activations(prep, x) for x in (prep.x_train, prep.x_test))
    clf = LogisticRegression(C=r.summary["head_c"], max_iter=5000).fit(f_train.double().numpy(), prep.y_train.numpy())
    reference = (clf.predict(f_test.double().numpy()) == prep.y_test.numpy()).mean()
    assert abs(r.summary["test_acc"] - reference) * len(prep.y_test) <= 1 + 1e-9  # at most one test item differs
    assert len(r.history) == 5 and r.history[-1]["train_loss"] < r.history[0]["train_loss"] + 1e-9


def test_fine_tune_at_every_block_is_feature_extraction():
    frozen = training.train(TrainConfig(mode="frozen", **TINY))
    all_frozen = training.train(TrainConfig(mode="finetune", freeze_depth=9, **TINY))
    assert all_frozen.summary["head_solver"] == "lbfgs"
    assert all_frozen.summary["test_acc"] == frozen.summary["test_acc"]
    assert _without_seconds(all_frozen.history) == _without_seconds(frozen.history)


# ---- random features: the cleanest control -------------------------------------------------------------------
@pytest.mark.slow
def test_frozen_random_init_features_are_a_healthy_baseline():
    """Pooled features of a random-init backbone are about 1e-8 in norm: scaled before the head's fit, they are a
    real control that sits between chance (10%) and pretrained features, never one class predicted."""
    config = TrainConfig(data="builtin:animals", backbone="mobilenet_v2", mode="frozen", image_size=64,
                         labels_per_class=25, pretrained=False)
    accs = []
    for seed in (0, 1, 2):
        r = training.train(TrainConfig(**{**config.to_dict(), "seed": seed}))
        assert r.summary.health == [], r.summary.health
        predicted = np.array(r.summary.confusion_matrix).sum(0)
        assert predicted.max() / predicted.sum() < 0.3
        accs.append(r.summary.test_acc)
    # measured 0.51, 0.61, 0.66 (docs/results.md); pretrained features reach 0.83-0.87 on the same splits.
    # 0.35 sits three times chance below the lowest seed: the bar is "learned something", not a number to match.
    assert np.mean(accs) > 0.35


def test_the_head_s_scaling_is_folded_into_a_plain_linear_head():
    """The fit runs on centred, scaled features; the head it writes gives the same logits on the raw ones."""
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(40, 16, generator=gen, dtype=torch.float64) * 1e-8 + 3e-8
    y = torch.arange(40) % 4
    head = nn.Linear(16, 4).double()
    fit = training.head_fit.Fit(head, f, y, 1.0, 200)
    loss, acc = fit.step()
    logits = torch.from_numpy(fit.clf.decision_function(fit.span.project(f)))
    assert torch.allclose(head(f).detach(), logits, atol=1e-6)
    assert acc > 0.5  # a head on 1e-8 features learns (unscaled, the penalty flattens it to one class)


# ---- every arm trained to convergence -----------------------------------------------------------------------------
def test_every_network_that_trains_gets_the_converge_budget_by_default():
    assert TrainConfig(mode="finetune").effective_budget == "converge"
    assert TrainConfig(mode="scratch").effective_budget == "converge"
    assert TrainConfig(mode="frozen").effective_budget == "fixed"  # the head's solver converges by itself
    assert TrainConfig(mode="finetune", budget="fixed").effective_budget == "fixed"


@pytest.mark.slow
def test_a_default_fine_tune_trains_to_convergence_where_the_short_budget_stops_early():
    """digits at 32 px, efficientnet_lite0, 5 labels per class, blocks 0-4 frozen: ten short epochs stop while
    validation still climbs (their best epoch is the last); the default budget trains at least 400 steps and
    ends higher (0.656 against 0.356 here)."""
    base = dict(data="builtin:digits", backbone="efficientnet_lite0", mode="finetune", freeze_depth=5,
                labels_per_class=5, seed=0, image_size=32)
    short = training.train(TrainConfig(**base, budget="fixed"))
    default = training.train(TrainConfig(**base))
    assert default.summary.budget == "converge" and short.summary.budget == "fixed"
    assert default.summary.epochs_run * math.ceil(default.summary.n_train / 32) >= 400
    assert short.summary.selected_epoch == short.summary.epochs_run
    assert default.summary.test_acc > short.summary.test_acc


# ---- out of distribution -----------------------------------------------------------------------------------------
def test_shifts_change_images_deterministically():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    for name in shifts.IMAGE_SHIFTS:
        out = shifts.shift_images(images, name, seed=3)
        assert out.dtype == torch.uint8 and out.shape == images.shape
        assert torch.equal(out, shifts.shift_images(images, name, seed=3))
        assert not torch.equal(out, images), name
    texts = ["the quick brown fox jumps over lazy dogs"] * 3
    assert shifts.shift_texts(texts, seed=1) == shifts.shift_texts(texts, seed=1) != texts
    assert shifts.shift_for("rotate", "text") == "typos" and shifts.shift_for("rotate", "image") == "rotate"


def test_the_shift_is_applied_to_evaluation_only():
    plain = training.prepare(TrainConfig(mode="frozen", ood_shift="invert", **TINY))
    assert torch.equal(plain.x_ood, 255 - plain.x_test)
    other = training.prepare(TrainConfig(mode="frozen", ood_shift="blur", **TINY))
    for part in ("x_train", "x_val", "x_test"):
        assert torch.equal(getattr(plain, part), getattr(other, part))
    r = training.fit(plain)
    assert r.summary["ood_shift"] == "invert" and 0.0 <= r.summary["ood_acc"] <= 1.0
    assert r.summary["ood_acc"] != r.summary["test_acc"]


# ---- the sweep's contract -----------------------------------------------------------------------------------------
def test_sweep_json_cells_gaps_and_sentence(tmp_path):
    cmd = [sys.executable, "-m", "tl_core", "sweep", "--data", "builtin:digits", "--backbone", "mobilenet_v2",
           "--image-size", "32", "--epochs", "2", "--labels-per-class", "8", "--val-per-class", "5",
           "--test-per-class", "5", "--modes", "frozen,scratch", "--budget", "fixed", "--seeds", "2",
           "--store", str(tmp_path / "runs.sqlite"), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"cells", "gaps", "sentence", "runs"}
    assert [(c["mode"], c["n"]) for c in result["cells"]] == [("frozen", 2), ("scratch", 2)]
    cell = result["cells"][0]
    assert {"mode", "freeze_depth", "labels_per_class", "n", "mean", "std", "accs"} <= set(cell)
    assert cell["mean"] == pytest.approx(np.mean(cell["accs"]))
    gap = result["gaps"][0]
    assert {"labels_per_class", "pretrained_mode", "gap_mean", "gap_ci95"} <= set(gap)
    assert gap["pretrained_mode"] == "frozen" and len(gap["gap_ci95"]) == 2
    assert gap["gap_ci95"][0] <= gap["gap_mean"] <= gap["gap_ci95"][1]
    assert "over training from scratch" in result["sentence"] and "2 seeds" in result["sentence"]
    assert len(result["runs"]) == 4 and {r["seed"] for r in result["runs"]} == {0, 1}
