"""Ranking reads frozen features whatever the page has selected for training: a recipe, a mode, a budget.

A teacher who picked "Gradual unfreezing" on the Model page and pressed Rank got the CLI's message about --mode:
the ranking's frozen runs had inherited the training recipe.
"""

import pytest

from tl_core.config import TrainConfig
from tl_core.engine import ranking

TRAINING_SETTINGS = [
    dict(mode="finetune", recipe="gradual", freeze_depth=3),
    dict(mode="finetune", recipe="discriminative", freeze_depth=2),
    dict(mode="finetune", recipe="surgical", surgical_block=2),
    dict(mode="finetune", recipe="lp-ft", freeze_depth=4),
    dict(mode="frozen", recipe="adabn"),
    dict(mode="scratch", budget="converge"),
    dict(mode="finetune", freeze_depth=5, budget="fixed", augment=True),
]


@pytest.mark.parametrize("settings", TRAINING_SETTINGS, ids=lambda s: s.get("recipe") or s["mode"])
def test_the_frozen_run_a_score_predicts_is_plain_feature_extraction(settings):
    config = TrainConfig(data="builtin:digits", image_size=32, labels_per_class=20, seed=3, **settings)
    frozen = ranking.frozen_config(config, "mobilenet_v2", False, 10)
    frozen.validate()  # no recipe, mode or budget rule left to break
    assert (frozen.mode, frozen.recipe, frozen.lp_ft, frozen.surgical_block, frozen.budget, frozen.augment) == \
        ("frozen", None, False, None, None, False)
    # the data, split and input settings carry over: the score predicts a run on these items
    assert (frozen.data, frozen.image_size, frozen.seed, frozen.labels_per_class, frozen.pretrained) == \
        ("builtin:digits", 32, 3, 10, False)


def test_ranking_with_a_recipe_selected_scores_the_backbones():
    config = TrainConfig(data="builtin:digits", image_size=32, val_per_class=3, test_per_class=3,
                         mode="finetune", recipe="gradual", freeze_depth=3)
    result = ranking.rank_backbones(config, names=["mobilenet_v2"], max_per_class=5)
    assert result.status == "completed" and [s.name for s in result.scores] == ["mobilenet_v2"]
    assert result.items == 50
