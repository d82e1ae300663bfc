"""The run plan is the one answer to "what trains?": it must agree with the model the engine builds."""

import pytest

from tl_core.config import Mode
from tl_core.models import backbones
from tl_core.presentation import blocks
from tl_core.engine.plan import HEAD_NAME, plan_run

N_CLASSES = 7


def _cases():
    for name in backbones.REGISTRY:
        n = len(backbones.describe(name)["blocks"])
        yield name, Mode.FROZEN, None
        yield name, Mode.SCRATCH, None
        for depth in range(n + 1):
            yield name, Mode.FINETUNE, depth


@pytest.mark.parametrize("name", list(backbones.REGISTRY))
def test_the_plan_agrees_with_the_built_model_for_every_backbone_mode_and_depth(name):
    model = backbones.skeleton(name, n_classes=N_CLASSES)  # weightless, on the meta device
    info = backbones.describe(name)
    for case_name, mode, depth in _cases():
        if case_name != name:
            continue
        plan = plan_run(mode, depth, info, N_CLASSES)
        assert not plan.problems
        model.freeze(plan.depth)
        assert [b.name for b in plan.blocks] == model.block_names
        assert (plan.trainable_params, plan.total_params) == model.count_params(), (mode, depth)
        assert plan.head_params == sum(p.numel() for p in model.get_head().parameters())
        frozen = [not any(p.requires_grad for p in block) for block in _block_params(model)]
        assert frozen == [b.frozen for b in plan.blocks], (mode, depth)


def _block_params(model):
    groups = model.param_groups()
    return [groups.get(i, []) for i in range(model.n_blocks)]


def test_mobilenet_v3s_pretrained_fc_block_is_not_the_new_head():
    """MobileNetV3's classifier starts with a pretrained Linear called `fc`: a backbone block, frozen in frozen mode."""
    info = backbones.describe("mobilenet_v3_small")
    assert info["blocks"][-1] == "fc"
    plan = plan_run(Mode.FROZEN, None, info, 3)
    assert plan.frozen_blocks[-1] == "fc" and plan.trainable_blocks == []
    assert plan.sentence() == f"Blocks stem…fc frozen; only the {HEAD_NAME} trains."
    last = plan_run(Mode.FINETUNE, len(info["blocks"]) - 1, info, 3)
    assert last.trainable_blocks == ["fc"]
    assert last.sentence() == f"Blocks stem…head_conv frozen, fc and the {HEAD_NAME} train."
    fig = blocks.block_diagram(plan)
    boxes = [s.name for s in fig.layout.shapes if s.name]
    assert "block:fc" in boxes and boxes[-1] == f"head:{HEAD_NAME}"
    assert "frozen" in fig.layout.title.text and f"{plan.n_blocks} blocks" in fig.layout.title.text


def test_a_depth_out_of_range_is_a_problem_not_a_crash():
    info = backbones.describe("resnet18")
    plan = plan_run(Mode.FINETUNE, 99, info, 3)
    assert plan.problems == ("freeze-depth 99 is out of range for resnet18: use 0..5",)
    assert plan_run(Mode.FROZEN, None, info, 1).problems[0].startswith("a classifier needs at least 2 classes")


# ---- the plan made once, before Start: its budget, its label, its trip through JSON ------------------------------
def _digits_plan(**settings):
    import math

    from tl_core import plan_for
    from tl_core.config import CONVERGE_MIN_STEPS, TrainConfig
    from tl_core.inputs import data

    config = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", labels_per_class=8, val_per_class=5,
                         test_per_class=5, image_size=32, **settings)
    return config, plan_for(config, data.load_dataset("builtin:digits")), math, CONVERGE_MIN_STEPS


def test_a_converge_run_plans_the_epochs_it_will_train_not_the_epochs_it_was_given():
    config, plan, math, min_steps = _digits_plan(mode="scratch", epochs=10, batch_size=32)
    assert plan.budget == "converge" and plan.n_train == 80 and plan.steps_per_epoch == 3
    assert plan.epochs == math.ceil(min_steps / 3) > config.epochs  # 134 epochs, not the 10 asked for


def test_a_fitted_head_plans_its_epochs_as_slices_of_one_step():
    _, plan, _, _ = _digits_plan(mode="frozen", epochs=4)
    assert plan.fits_head and (plan.epochs, plan.steps_per_epoch) == (4, 1)


def test_the_plan_survives_json_and_labels_its_depth():
    import json

    from tl_core.engine.plan import RunPlan, default_depth, depth_label

    config, plan, _, _ = _digits_plan(mode="finetune")
    assert plan.depth == default_depth(plan.n_blocks) == config.freeze_depth  # one default, written to the config
    assert RunPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert depth_label(plan) == depth_label(plan.to_dict()) == f"k={plan.depth}"
    _, surgical, _, _ = _digits_plan(mode="finetune", recipe="surgical", surgical_block=3)
    assert depth_label(surgical) == f"tunes {surgical.blocks[3].name} only"
    assert depth_label(_digits_plan(mode="frozen")[1]) == ""


def test_a_queued_converge_run_shows_the_epochs_its_plan_trains(tmp_path):
    """Before its first event a job reads its epochs from the plan it was sent with, not from --epochs."""
    from tl_core.runs.jobs import Job

    config, plan, _, _ = _digits_plan(mode="scratch", epochs=10)
    job = Job("job1", "t", config, plan=plan.to_dict())
    assert job.epochs == plan.epochs > 10 and Job("job2", "t", config).epochs == 10
    assert job.depth_label == ""
