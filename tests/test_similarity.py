"""Which blocks fine-tuning changed: linear CKA, its invariances, and a real fine-tune run that measures it."""

import pytest
import torch

from tl_core.presentation import plots
from tl_core.engine import similarity, training
from tl_core.config import TrainConfig

TINY = dict(data="builtin:digits", backbone="mobilenet_v2", epochs=2, labels_per_class=8, val_per_class=5, test_per_class=5,
            image_size=32)


def test_linear_cka_ignores_rotation_and_scale_but_not_content():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(80, 40, generator=gen)
    rotation, _ = torch.linalg.qr(torch.randn(40, 40, generator=gen))
    assert similarity.linear_cka(x, x) == pytest.approx(1.0)
    assert similarity.linear_cka(x, 5.0 * x @ rotation + 3.0) == pytest.approx(1.0)  # rotated, scaled, shifted
    assert similarity.linear_cka(x, torch.randn(80, 40, generator=gen)) < 0.6
    images = torch.randn(20, 3, 4, 4, generator=gen)  # conv activations are flattened per item
    assert similarity.linear_cka(images, images.flip(-1)) == pytest.approx(1.0)  # a permutation of features


def test_a_fine_tune_reports_which_blocks_moved():
    prep = training.prepare(TrainConfig(mode="finetune", freeze_depth=5, **TINY))
    result = training.fit(prep)
    change = result.summary["block_similarity"]
    assert change["blocks"] == prep.model.block_names and change["items"] == 50
    frozen, tuned = change["cka"][:5], change["cka"][5:]
    assert frozen == pytest.approx([1.0] * 5, abs=1e-6)  # frozen blocks compute exactly what they did
    assert min(tuned) < 0.999 and all(0.0 <= v <= 1.0 + 1e-6 for v in tuned)
    fig = plots.block_change(change["blocks"], change["cka"], 5)
    bar = fig.data[0]
    assert list(bar.x) == prep.model.block_names and list(bar.y)[:5] == pytest.approx([0.0] * 5, abs=1e-6)
    assert bar.marker.color[0] == plots.FROZEN_LINE and bar.marker.color[-1] == plots.MODE_COLORS["finetune"]
    assert list(bar.text)[:5] == ["frozen"] * 5 and bar.text[5] != "frozen"


def test_other_modes_do_not_measure_it():
    for mode in ("frozen", "scratch"):
        # budget "fixed": one epoch is enough to see what is measured (from scratch would train 400 steps)
        assert "block_similarity" not in training.train(TrainConfig(mode=mode, budget="fixed",
                                                                    **{**TINY, "epochs": 1})).summary
    assert len(plots.block_change(["a"], None, 0).data) == 0  # "not measured" figure


def test_a_surgical_run_greys_exactly_the_blocks_its_plan_froze():
    from tl_core.engine.plan import plan_run
    from tl_core.models import backbones

    plan = plan_run("finetune", None, backbones.describe("mobilenet_v2"), 10, recipe="surgical", surgical_block=3)
    names = [b.name for b in plan.blocks]
    fig = plots.block_change(names, [0.9] * len(names), plan.to_dict())
    bar = fig.data[0]
    assert [t == "frozen" for t in bar.text] == [i != 3 for i in range(len(names))]  # after block 3 too
    assert [c == plots.FROZEN_LINE for c in bar.marker.color] == [i != 3 for i in range(len(names))]
    assert plots.block_change(names, [0.9] * len(names), plan).data[0].text == bar.text
