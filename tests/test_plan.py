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
