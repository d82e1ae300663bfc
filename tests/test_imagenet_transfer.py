"""Do better ImageNet models transfer better? The table and its statistics (tl_core.runs.imagenet_transfer), the
chart and the sentence (tl_core.presentation.imagenet_chart), from a real ranking of the bundled backbones on tiny
settings and run records written through the real RunStore. Statistics are checked against scipy.stats itself.
"""

import numpy as np
import pytest
from scipy import stats

from tl_core.config import TrainConfig
from tl_core.engine import ranking as engine_ranking
from tl_core.presentation import imagenet_chart
from tl_core.runs import imagenet_transfer as it

TINY = dict(data="builtin:animals", image_size=32, val_per_class=5, test_per_class=10, labels_per_class=5)
TOP1 = {"mobilenet_v2": 71.878, "efficientnet_lite0": 75.1, "efficientnet_lite1": 76.7, "efficientnet_lite2": 77.6}
CLASSES = [f"c{i}" for i in range(10)]


@pytest.fixture(scope="module")
def ranked():
    """The four bundled vision backbones and their random-init copies, scored for real at 32 px on 50 items."""
    return engine_ranking.rank_backbones(TrainConfig(**TINY), names=list(TOP1), include_random=True,
                                         max_per_class=5)


def record(store, run_id, name, pretrained, acc, *, seed=0, mode="frozen", image_size=32, health=()):
    """A finished run as the store keeps it, on the ranking's settings unless told otherwise."""
    config = TrainConfig(**TINY, backbone=name, mode=mode, pretrained=pretrained, seed=seed).to_dict()
    config["image_size"] = image_size
    store.create_run(run_id, config, owner="t")
    store.finish(run_id, "completed", {"test_acc": acc, "health": list(health), "classes": CLASSES})


def fill(store, accs: dict, seeds=(0, 1, 2)):
    """accs: (name, pretrained) -> mean accuracy; seed s gets mean + (s - 1) / 100, so the std is 0.01."""
    for (name, pretrained), acc in accs.items():
        for s in seeds:
            record(store, f"{name}-{pretrained}-{s}", name, pretrained, acc + (s - 1) / 100, seed=s)


def test_imagenet_top1_comes_from_the_registry_and_random_init_has_none():
    for name, top1 in TOP1.items():
        assert it.imagenet_acc1(name, True) == pytest.approx(top1)
        assert it.imagenet_acc1(name, False) is None
    assert it.imagenet_acc1("all-MiniLM-L6-v2", True) is None  # a text backbone never saw ImageNet
    assert it.imagenet_acc1("resnet9000", True) is None


def test_table_means_seeds_and_statistics_match_scipy(ranked, store):
    accs = {("mobilenet_v2", True): 0.60, ("efficientnet_lite0", True): 0.70, ("efficientnet_lite1", True): 0.72,
            ("efficientnet_lite2", True): 0.80, ("mobilenet_v2", False): 0.40, ("efficientnet_lite0", False): 0.45,
            ("efficientnet_lite1", False): 0.35, ("efficientnet_lite2", False): 0.30}
    fill(store, accs)
    record(store, "old", "mobilenet_v2", True, 0.0, seed=0)  # written after, so the newest of seed 0 ...
    record(store, "new", "mobilenet_v2", True, 0.59, seed=0)  # ... is this one: each seed counts once
    record(store, "far", "efficientnet_lite0", True, 0.0, seed=7)  # a seed not asked for
    record(store, "big", "efficientnet_lite0", True, 0.0, image_size=64)  # other settings
    record(store, "sick", "efficientnet_lite1", False, 0.1, seed=3, health=[{"code": "one_class"}])
    table = it.transfer_table(ranked, store.list_runs(with_history=False), seeds=[0, 1, 2])
    rows = {(r.name, r.pretrained): r for r in table.rows}
    assert set(rows) == set(accs)
    for key, acc in accs.items():
        r = rows[key]
        assert r.frozen.n == 3 and r.frozen.seeds == [0, 1, 2], key
        expected = [acc - 0.01, acc, acc + 0.01] if key != ("mobilenet_v2", True) else [0.59, 0.60, 0.61]
        assert r.frozen.mean == pytest.approx(np.mean(expected))
        assert r.frozen.std == pytest.approx(np.std(expected, ddof=1))
        assert r.imagenet_acc1 == (pytest.approx(TOP1[r.name]) if r.pretrained else None)
    assert rows["efficientnet_lite1", False].frozen.unhealthy == 0  # seed 3 was not asked for
    pre = table.points()
    assert [r.name for r in pre] == [r.name for r in table.rows if r.pretrained]
    top1, means = [r.imagenet_acc1 for r in pre], [r.frozen.mean for r in pre]
    expected = stats.pearsonr(top1, means)
    assert table.pearson == {"r": pytest.approx(expected.statistic), "p_value": pytest.approx(expected.pvalue), "n": 4}
    every = [rows[(s.name, s.pretrained)] for s in ranked.scores]
    tau = stats.kendalltau([r.logme for r in every], [r.frozen.mean for r in every])
    assert table.kendall["kendall_tau"] == pytest.approx(tau.statistic) and table.kendall["n"] == 8
    assert table.kendall["p_value"] == pytest.approx(tau.pvalue)
    assert table.kendall_top1["kendall_tau"] == pytest.approx(stats.kendalltau(top1, means).statistic)
    assert table.families() == ["EfficientNet", "MobileNet"] and table.n_classes == 10
    assert table.pretraining_gain() == pytest.approx(np.mean([0.6, 0.7, 0.72, 0.8]) - np.mean([0.4, 0.45, 0.35, 0.3]))
    out = table.to_dict()
    assert {"name", "pretrained", "imagenet_acc1", "logme", "hscore", "frozen_test_mean", "frozen_test_std",
            "n"} <= set(out["backbones"][0])
    assert out["pearson_r_top1"] == table.pearson["r"] and out["pearson_n_top1"] == 4
    assert out["kendall_tau"] == table.kendall["kendall_tau"] and out["kendall_p"] is not None
    # every seed in the store when none is named: seed 7 joins, and the unhealthy seed 3 is counted, not read
    everything = {(r.name, r.pretrained): r for r in it.transfer_table(ranked, store.list_runs()).rows}
    assert everything["efficientnet_lite0", True].frozen.n == 4
    assert everything["efficientnet_lite1", False].frozen.unhealthy == 1
    assert everything["efficientnet_lite1", False].frozen.n == 3


def test_missing_lists_each_backbone_and_seed_without_a_finished_run(ranked, store):
    base = TrainConfig(**{**TINY, "image_size": None}, backbone="mobilenet_v2", mode="finetune", recipe="gradual")
    configs = it.check_configs(ranked, base, 2)
    assert len(configs) == 16 and {c.seed for c in configs} == {0, 1}
    for c in configs:  # the ranking's own check run: plain frozen features on its data, split and image size
        assert (c.mode, c.recipe, c.budget, c.augment, c.image_size, c.labels_per_class) == \
            ("frozen", None, None, False, 32, 5)
    assert it.missing(ranked, base, [], 2) == configs
    record(store, "done", "efficientnet_lite2", False, 0.3, seed=1)
    record(store, "sick", "mobilenet_v2", True, 0.1, seed=0, health=[{"code": "one_class"}])  # trained: a verdict
    record(store, "other", "mobilenet_v2", True, 0.5, seed=1, image_size=64)  # not these settings
    todo = it.missing(ranked, base, store.list_runs(), 2)
    key = lambda c: (c.backbone, c.pretrained, c.seed)  # noqa: E731
    left_out = {key(c) for c in configs} - {key(c) for c in todo}
    assert left_out == {("efficientnet_lite2", False, 1), ("mobilenet_v2", True, 0)}
    with pytest.raises(Exception, match="--seeds must be between 1 and"):
        it.check_configs(ranked, base, 0)


def test_pearson_needs_three_points_that_vary():
    assert it.pearson([1.0, 2.0], [0.5, 0.6]) == {"r": None, "p_value": None, "n": 2}
    assert it.pearson([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])["r"] is None
    assert it.pearson([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.5])["r"] == pytest.approx(
        stats.pearsonr([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.5]).statistic)
    assert it.critical_r(4) == pytest.approx(0.950, abs=1e-3) and it.critical_r(2) is None


def _table(ranked, store, accs, seeds=(0, 1, 2)):
    fill(store, accs, seeds)
    return it.transfer_table(ranked, store.list_runs(), seeds=list(seeds))


def test_chart_plots_top1_against_frozen_accuracy_with_spread_and_hollow_random_copies(ranked, store):
    accs = {**{(n, True): 0.5 + i / 10 for i, n in enumerate(TOP1)}, **{(n, False): 0.3 for n in TOP1}}
    record(store, "ft", "mobilenet_v2", True, 0.75, mode="finetune")
    table = _table(ranked, store, accs)
    fig = imagenet_chart.imagenet_transfer(table)
    frozen = next(t for t in fig.data if t.marker.symbol == "circle")
    assert list(frozen.x) == pytest.approx([r.imagenet_acc1 for r in table.points()])
    assert list(frozen.y) == pytest.approx([r.frozen.mean for r in table.points()])
    assert list(frozen.error_y.array) == pytest.approx([0.01] * 4) and frozen.error_y.visible
    random = next(t for t in fig.data if t.marker.symbol == "circle-open")
    assert list(random.y) == pytest.approx([0.3] * 4)
    assert sorted(random.x) == pytest.approx(sorted(TOP1.values()))  # at its pretrained self's x
    tuned = next(t for t in fig.data if t.marker.symbol == "diamond")
    assert list(tuned.x) == pytest.approx([71.878]) and list(tuned.y) == pytest.approx([0.75])
    assert any(t.meta == "fit" for t in fig.data)  # the least-squares line
    subtitle = fig.layout.title.subtitle.text
    r, k = table.pearson, table.kendall
    assert f"Pearson r (ImageNet top-1 vs frozen) = {r['r']:+.2f}" in subtitle and "n = 4" in subtitle
    assert f"Kendall's τ (LogME vs frozen) = {k['kendall_tau']:+.2f}" in subtitle and "n = 8" in subtitle
    assert subtitle.count("p ") == 2 and "mean ± std over 3 seeds" in subtitle
    assert fig.layout.xaxis.title.text.startswith("ImageNet top-1") and fig.layout.yaxis.tickformat == ".0%"


def test_chart_without_runs_says_why(ranked):
    fig = imagenet_chart.imagenet_transfer(it.transfer_table(ranked, []))
    assert not fig.data and "No feature-extraction runs" in fig.layout.annotations[0].text


def test_sentence_reads_a_clear_trend_as_a_trend_not_a_law(ranked, store):
    accs = {(n, True): 0.5 + (TOP1[n] - 70) / 20 for n in TOP1}  # accuracy rises with top-1, exactly linearly
    accs.update({(n, False): 0.3 for n in TOP1})
    text = imagenet_chart.conclusion(_table(ranked, store, accs))
    assert text.startswith("Four backbones from two families: the better ImageNet models transfer better here")
    assert "r = +1.00" in text and "not a law" in text and "Kornblith et al. (2019) found r = 0.99" in text
    assert "domain" not in text and "spread" not in text and "no better than chance" not in text


def test_sentence_says_when_four_points_cannot_prove_a_trend(ranked, store):
    accs = {("mobilenet_v2", True): 0.60, ("efficientnet_lite0", True): 0.66, ("efficientnet_lite1", True): 0.61,
            ("efficientnet_lite2", True): 0.67}
    table = _table(ranked, store, accs)
    assert table.pearson["r"] > 0 and table.pearson["p_value"] > 0.05
    text = imagenet_chart.conclusion(table)
    assert "the trend points that way" in text and "not proven" in text and "above 0.95 would be" in text


def test_sentence_names_domain_mismatch_when_random_features_do_as_well(ranked, store):
    accs = {("mobilenet_v2", True): 0.80, ("efficientnet_lite0", True): 0.78, ("efficientnet_lite1", True): 0.79,
            ("efficientnet_lite2", True): 0.76}
    accs.update({(n, False): 0.77 for n in TOP1})  # random weights do as well: ImageNet brings nothing here
    text = imagenet_chart.conclusion(_table(ranked, store, accs))
    assert "do not transfer better" in text
    assert "random-init copies come within 1 point of the pretrained" in text and "a domain far from ImageNet" in text


def test_sentence_warns_when_the_backbones_differ_by_less_than_the_seed_spread(ranked, store):
    accs = {("mobilenet_v2", True): 0.700, ("efficientnet_lite0", True): 0.705, ("efficientnet_lite1", True): 0.702,
            ("efficientnet_lite2", True): 0.708}  # 0.8 points apart; each seed's spread is 1 point
    accs.update({(n, False): 0.4 for n in TOP1})
    text = imagenet_chart.conclusion(_table(ranked, store, accs))
    assert "closer together than one backbone's spread over seeds" in text and "domain" not in text


def test_sentence_says_when_one_distant_point_carries_r(ranked, store):
    accs = {("mobilenet_v2", True): 0.600, ("efficientnet_lite0", True): 0.720, ("efficientnet_lite1", True): 0.715,
            ("efficientnet_lite2", True): 0.710}  # the order within the three EfficientNets is reversed
    table = _table(ranked, store, accs)
    assert table.pearson["r"] > 0 and table.kendall_top1["kendall_tau"] == pytest.approx(0.0)
    assert "agree no better than chance (Kendall's τ = +0.00)" in imagenet_chart.conclusion(table)


def test_sentence_asks_for_three_points_first(ranked, store):
    text = imagenet_chart.conclusion(_table(ranked, store, {("mobilenet_v2", True): 0.6}))
    assert text.startswith("One pretrained backbone") and "at least three" in text
    assert imagenet_chart.conclusion(it.transfer_table(ranked, [])).startswith("No pretrained backbones")
