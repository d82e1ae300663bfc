"""Sweeps are controlled grids: one setting varies, everything else stays the same."""

import pytest

from tl_core.config import TrainConfig
from tl_core.runs.sweep import parse_int_list, sweep_configs


def test_freeze_depth_only_varies_fine_tuning():
    configs = sweep_configs(TrainConfig(labels_per_class=10), depths=(0, 3, 6))
    assert [(c.mode, c.freeze_depth) for c in configs] == [
        ("frozen", None), ("finetune", 0), ("finetune", 3), ("finetune", 6), ("scratch", None)]
    assert {c.labels_per_class for c in configs} == {10}
    assert {(c.seed, c.data, c.backbone, c.epochs) for c in configs} == {(0, "builtin:animals", "mobilenet_v2", 10)}


def test_labels_per_class_grid():
    configs = sweep_configs(TrainConfig(), modes=("frozen", "scratch"), labels_per_class=(5, 25))
    assert [(c.labels_per_class, c.mode) for c in configs] == [(5, "frozen"), (5, "scratch"), (25, "frozen"), (25, "scratch")]


def test_parse_int_list():
    assert parse_int_list("0, 3,6") == (0, 3, 6)
    assert parse_int_list("") == (None,)
    with pytest.raises(ValueError, match="comma-separated whole numbers"):
        parse_int_list("1,two")


def test_a_recipe_keeps_to_its_mode_and_the_efficiency_lesson_drops_it():
    from tl_core.runs.sweep import efficiency_configs

    base = TrainConfig(mode="finetune", recipe="discriminative", labels_per_class=10)
    configs = sweep_configs(base, depths=(0,))
    assert [(c.mode, c.recipe) for c in configs] == [("frozen", None), ("finetune", "discriminative"),
                                                     ("scratch", None)]
    assert {c.recipe for c in efficiency_configs(base, 50, seeds=1)} == {None}


def test_runs_recorded_before_a_setting_existed_share_a_cell_with_runs_that_leave_it_unset():
    from tl_core.runs.comparison import setting_of

    old = {"config": {"data": "builtin:animals", "mode": "frozen", "seed": 0}, "summary": {}}
    new = {"config": {**old["config"], "recipe": None, "surgical_block": None}, "summary": {}}
    assert setting_of(old) == setting_of(new)
    assert setting_of(old) != setting_of({"config": {**new["config"], "recipe": "adabn"}, "summary": {}})
