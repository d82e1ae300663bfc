"""The recipe presets train what they claim, on builtin:animals with mobilenet_v2 (real torch, tiny settings).

Gradual unfreezing: which blocks train in each epoch, seen in the weights at the end of every epoch, and the
slanted triangular rate step by step. Discriminative rates: each optimizer group's rate. Surgical fine-tuning: one
block (and the head) moves, every other tensor is bit-identical. AdaBN: BatchNorm statistics move, no weight does.
"""

import json

import pytest
import torch

from tl_core import cli
from tl_core.config import TrainConfig
from tl_core.engine import optimization, recipe_hooks, recipes, training
from tl_core.engine.plan import HEAD_NAME, plan_run
from tl_core.errors import ConfigError
from tl_core.events import Message, StepProgress
from tl_core.models import backbones
from tl_core.presentation import blocks as blocks_chart

TINY = dict(data="builtin:animals", backbone="mobilenet_v2", epochs=3, budget="fixed", labels_per_class=5, val_per_class=5,
            test_per_class=5, image_size=32, batch_size=16)
BLOCKS = ["stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head_conv"]


def _tensors_by_block(model) -> dict[str, dict[str, torch.Tensor]]:
    """Every tensor of the state dict (weights and BatchNorm buffers), copied, grouped by block; the head apart."""
    owner = model._owner
    head = {n for n, o in owner.items() if o == -1}
    out: dict[str, dict[str, torch.Tensor]] = {name: {} for name in model.block_names + [HEAD_NAME]}
    for key, tensor in model.state_dict().items():
        if key in head:
            out[HEAD_NAME][key] = tensor.detach().clone()
            continue
        inner = key[4:] if key.startswith("net.") else key
        block = next(b.name for b in model._blocks if any(inner.startswith(p + ".") for p in b.prefixes))
        out[block][key] = tensor.detach().clone()
    return out


def _moved(before, model) -> set[str]:
    """The blocks (and the head) in which at least one tensor is no longer bit-identical."""
    after = _tensors_by_block(model)
    return {b for b in before if any(not torch.equal(before[b][k], after[b][k]) for k in before[b])}


def _spy_optimizer(monkeypatch) -> list:
    made = []
    real = optimization.make_optimizer

    def spy(prep):
        made.append(real(prep))
        return made[-1]

    monkeypatch.setattr(optimization, "make_optimizer", spy)
    return made


# ---- the recipes, trained ------------------------------------------------------------------------------------
def test_gradual_unfreezing_trains_one_more_block_each_epoch_with_a_slanted_triangular_rate(monkeypatch):
    made = _spy_optimizer(monkeypatch)
    prep = training.prepare(TrainConfig(mode="finetune", recipe="gradual", **TINY))
    start = _tensors_by_block(prep.model)
    moved_by_epoch, head_lrs, events = {}, [], []

    def watch(event):
        events.append(event)
        if isinstance(event, StepProgress) and event.step == event.steps_per_epoch:  # the epoch's last step
            moved_by_epoch[event.epoch] = _moved(start, prep.model)
        if isinstance(event, StepProgress):  # the scheduler has stepped `global_step` times
            head_lrs.append((event.global_step, event.total_steps,
                             next(g["lr"] for g in made[0].param_groups if g["block"] == HEAD_NAME)))

    result = training.fit(prep, callbacks=[watch])
    assert result.status == "completed"
    assert [h["trainable_blocks"] for h in result.history] == [[], ["head_conv"], ["stage7", "head_conv"]]
    # what the history says is what moved: the weights at the end of each epoch
    assert moved_by_epoch == {1: {HEAD_NAME}, 2: {HEAD_NAME, "head_conv"}, 3: {HEAD_NAME, "head_conv", "stage7"}}
    notes = [e.text for e in events if isinstance(e, Message) and e.text.startswith("Gradual unfreezing")]
    assert notes == ["Gradual unfreezing, epoch 1: only the new head trains.",
                     "Gradual unfreezing, epoch 2: head_conv and the new head train.",
                     "Gradual unfreezing, epoch 3: stage7, head_conv and the new head train."]
    lr = prep.config.effective_lr("vision")
    total = head_lrs[0][1]
    assert len(head_lrs) == total == 3 * 4  # 50 items in batches of 16
    for step, _, got in head_lrs:
        assert got == pytest.approx(lr * recipes.slanted_triangular(step, total))
    peak = max(range(total), key=lambda t: recipes.slanted_triangular(t, total))
    assert peak == 1 and head_lrs[-1][2] < head_lrs[0][2]  # a short rise, then a long fall


def test_slanted_triangular_rate_follows_the_paper():
    """Howard & Ruder 2018, eq. 3 with T = 1000, cut_frac = 0.1, ratio = 32: cut = 100."""
    f = recipes.slanted_triangular
    assert f(0, 1000) == pytest.approx(1 / 32)
    assert f(50, 1000) == pytest.approx((1 + 0.5 * 31) / 32)
    assert f(100, 1000) == pytest.approx(1.0)
    assert f(550, 1000) == pytest.approx((1 + 0.5 * 31) / 32)  # p = 1 - 450 / (100 * 9)
    assert f(1000, 1000) == pytest.approx(1 / 32)


def test_discriminative_rates_divide_by_2_6_per_block_down_from_the_head(monkeypatch):
    made = _spy_optimizer(monkeypatch)
    prep = training.prepare(TrainConfig(mode="finetune", freeze_depth=0, recipe="discriminative", **{**TINY, "epochs": 1}))
    start = _tensors_by_block(prep.model)
    result = training.fit(prep)
    assert result.status == "completed"
    lr = prep.config.effective_lr("vision")
    rates = {g["block"]: g["initial_lr"] for g in made[0].param_groups}  # before the cosine decay
    assert set(rates) == set(BLOCKS) | {HEAD_NAME}
    assert rates[HEAD_NAME] == lr
    for i, name in enumerate(BLOCKS):
        k = len(BLOCKS) - i  # head_conv is one below the head
        assert rates[name] == pytest.approx(lr / 2.6 ** k, rel=1e-12), name
    assert _moved(start, prep.model) == set(BLOCKS) | {HEAD_NAME}


def test_surgical_fine_tuning_moves_one_block_and_the_head_only():
    block = 3  # stage3: in the middle, with frozen blocks on both sides
    prep = training.prepare(TrainConfig(mode="finetune", recipe="surgical", surgical_block=block,
                                        **{**TINY, "epochs": 2}))
    start = _tensors_by_block(prep.model)
    result = training.fit(prep)
    assert result.status == "completed"
    assert _moved(start, prep.model) == {BLOCKS[block], HEAD_NAME}  # every other tensor is bit-identical
    assert result.summary["trainable_params"] == prep.plan.trainable_params < result.summary["total_params"] // 10


def test_adabn_changes_batchnorm_statistics_and_no_weight():
    prep = training.prepare(TrainConfig(mode="frozen", recipe="adabn", **TINY))
    model = prep.model
    norms = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    stats = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in norms.items()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    events = []
    result = training.fit(prep, callbacks=[events.append])
    assert result.status == "completed"
    assert len(norms) == 52
    for n, m in norms.items():  # every layer's mean and variance re-estimated on the animals
        assert not torch.equal(stats[n][0], m.running_mean) and not torch.equal(stats[n][1], m.running_var), n
    head = {n for n, o in model._owner.items() if o == -1}
    unchanged = {n for n, p in model.named_parameters() if torch.equal(weights[n], p)}
    assert unchanged == set(weights) - head  # every backbone weight (and BatchNorm's scale and shift) kept
    assert any(isinstance(e, Message) and "52 BatchNorm layers adapted" in e.text for e in events)
    # the known result for the first layer: the mean and (unbiased) variance of its input over the 50 training
    # images, which fit in one batch
    conv, norm = model.net.features[0][0], model.net.features[0][1]
    with torch.no_grad():
        h = conv(model.vision_input(prep.x_train)).float()
    assert len(prep.x_train) <= training.EVAL_BATCH
    assert torch.allclose(norm.running_mean, h.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(norm.running_var, h.var((0, 2, 3), unbiased=True), rtol=1e-3, atol=1e-4)


def test_the_loop_calls_each_recipe_that_changes_the_run_as_one_hook():
    """AdaBN, LP-FT and gradual unfreezing act through hooks; every other setting gives the loop none to call."""
    from types import SimpleNamespace

    info = backbones.describe("mobilenet_v2")

    def hooks(mode, depth=None, recipe=None, lp_ft=False):
        plan = plan_run(mode, depth, info, 10, recipe=recipe)
        prep = SimpleNamespace(plan=plan, config=SimpleNamespace(lp_ft=lp_ft))
        return [type(h) for h in recipe_hooks.for_run(prep, SimpleNamespace(head_only=plan.head_only))]

    assert hooks("frozen", recipe="adabn") == [recipe_hooks.AdaptBatchNorm]
    assert hooks("finetune", 5, lp_ft=True) == [recipe_hooks.LinearProbeFirst]
    assert hooks("finetune", 9, lp_ft=True) == []  # every block frozen: the head is fitted, no probe comes first
    assert hooks("finetune", 0, recipe="gradual") == [recipe_hooks.GradualUnfreezing]
    assert hooks("finetune", 0, recipe="discriminative") == hooks("finetune", 5) == hooks("frozen") == []


# ---- the settings ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(recipe="cosine", mode="finetune"), "unknown recipe 'cosine': use one of lp-ft, gradual, discriminative"),
    (dict(recipe="gradual"), "--recipe gradual fine-tunes: use --mode finetune"),
    (dict(recipe="adabn", mode="finetune"), "--recipe adabn keeps the backbone frozen: use --mode frozen"),
    (dict(recipe="surgical", mode="finetune"), "--recipe surgical tunes one block: choose it with --surgical-block"),
    (dict(recipe="surgical", mode="finetune", surgical_block=-1), "--surgical-block must be 0 or more"),
    (dict(recipe="surgical", mode="finetune", surgical_block=2, freeze_depth=3), "--freeze-depth does not apply"),
    (dict(surgical_block=2, mode="finetune"), "--surgical-block only applies to --recipe surgical"),
])
def test_bad_recipe_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        TrainConfig(**kwargs).validate()


def test_a_surgical_block_out_of_range_is_a_config_error_naming_the_blocks():
    with pytest.raises(ConfigError, match=r"surgical block 9 is out of range for mobilenet_v2: use 0\.\.8 "
                                          r"\(0 stem, 1 stage1"):
        training.prepare(TrainConfig(mode="finetune", recipe="surgical", surgical_block=9, **TINY))


def test_adabn_on_a_backbone_without_batchnorm_is_a_problem_of_the_plan():
    plan = plan_run("frozen", None, backbones.describe("vit_b_16"), 2, recipe="adabn")
    assert plan.problems and "has no BatchNorm layers" in plan.problems[0]


def test_the_lp_ft_preset_is_the_lp_ft_setting():
    cfg = TrainConfig(mode="finetune", recipe="lp-ft")
    assert cfg.lp_ft and TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig(recipe="none").recipe is None


# ---- what the pages and the CLI show -------------------------------------------------------------------------
def _labels(fig) -> dict[str, str]:
    return {a.name.split(":", 1)[1]: a.text for a in fig.layout.annotations if (a.name or "").startswith("label:")}


def _trainable_boxes(fig) -> list[str]:
    from tl_core.presentation.formatting import FROZEN_LINE

    return [s.name.split(":", 1)[1] for s in fig.layout.shapes
            if (s.name or "").startswith("block:") and s.line.color != FROZEN_LINE]


def test_the_drawing_shows_what_each_preset_trains():
    info = backbones.describe("mobilenet_v2")
    gradual = blocks_chart.block_diagram(plan_run("finetune", 0, info, 10, recipe="gradual"))
    assert "Gradual unfreezing" in gradual.layout.title.text
    assert "from epoch 2" in _labels(gradual)["head_conv"] and "from epoch 10" in _labels(gradual)["stem"]

    disc = blocks_chart.block_diagram(plan_run("finetune", 0, info, 10, recipe="discriminative"))
    assert "/ 2.6" in disc.layout.title.text
    assert "lr / 2.6<sup>1</sup>" in _labels(disc)["head_conv"] and "2.6<sup>9</sup>" in _labels(disc)["stem"]

    surgical = blocks_chart.block_diagram(plan_run("finetune", None, info, 10, recipe="surgical", surgical_block=3))
    assert _trainable_boxes(surgical) == ["stage3"] and "tuned" in _labels(surgical)["stage3"]
    assert "only stage3 of 9 blocks trains" in surgical.layout.title.text

    adabn = blocks_chart.block_diagram(plan_run("frozen", None, info, 10, recipe="adabn"))
    assert _trainable_boxes(adabn) == [] and all("BN adapts" in t for t in _labels(adabn).values()
                                                 if "new" not in t)
    assert adabn.layout.title.text.startswith("AdaBN: all 9 blocks frozen")


def test_cli_trains_a_recipe_and_reports_it(tmp_path, capsys):
    code = cli.main(["train", "--data", "builtin:animals", "--backbone", "mobilenet_v2", "--recipe", "surgical",
                     "--surgical-block", "8", "--epochs", "1", "--labels-per-class", "5", "--val-per-class", "5",
                     "--test-per-class", "5", "--image-size", "32", "--quiet", "--json",
                     "--store", str(tmp_path / "runs.sqlite")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["recipe"] == "surgical" and out["mode"] == "finetune"  # the mode the recipe implies
    assert out["trainable_params"] == backbones.describe("mobilenet_v2")["block_params"][8] + 1280 * 10 + 10


@pytest.mark.parametrize("args, message", [
    (["--recipe", "surgical", "--surgical-block", "12"], "error: surgical block 12 is out of range for mobilenet_v2"),
    (["--recipe", "gradual", "--mode", "frozen"], "error: --recipe gradual fine-tunes: use --mode finetune"),
    (["--recipe", "adabn", "--freeze-depth", "3"], "error: --freeze-depth only applies to --mode finetune"),
])
def test_cli_bad_recipe_settings_exit_2_with_one_line(args, message, tmp_path, capsys):
    code = cli.main(["train", "--data", "builtin:animals", "--backbone", "mobilenet_v2", "--image-size", "32",
                     "--store", str(tmp_path / "runs.sqlite"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
