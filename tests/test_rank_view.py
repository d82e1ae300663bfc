"""The Model page's backbone ranking through AppTest, with the real engine: rank in the background, the sorted
table, the feature-extraction runs that check it, and the view below it, "Do better ImageNet models transfer
better?" (tiny settings: animals, 32 px, 10 items per class)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import go, new_app
from test_app_runs import poll, texts


@pytest.fixture(scope="module", autouse=True)
def env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TL_DATA_DIR", str(tmp_path_factory.mktemp("tl_rank_view")))
    mp.setenv("TL_MAX_CONCURRENT_RUNS", "1")
    yield
    from ui import ranking, state  # leave no thread behind

    ranking.rank_jobs().cancel_all()
    manager = state._manager(state.data_root(), 1)
    for job in manager.jobs():
        manager.cancel(job.job_id)
    for job in manager.jobs():
        manager.wait(job.job_id, timeout=120)
    mp.undo()


def small_settings(at: AppTest) -> AppTest:
    go(at, "data")
    at.number_input(key="labels_per_class").set_value(10).run()
    at.number_input(key="val_per_class").set_value(5).run()
    at.number_input(key="test_per_class").set_value(5).run()
    go(at, "model")
    at.number_input(key="image_size").set_value(32).run()
    at.number_input(key="rank_per_class").set_value(10).run()
    at.checkbox(key="rank_random").check().run()
    return at


def rank_table(at: AppTest):
    return next((df.value for df in at.dataframe if "H-score" in df.value.columns), None)


def imagenet_table(at: AppTest):
    return next((df.value for df in at.dataframe if "ImageNet top-1" in df.value.columns), None)


def ranked(at: AppTest) -> bool:
    return rank_table(at) is not None and "backbones ranked on" in texts(at)


def test_rank_table_is_sorted_and_random_init_ranks_below_pretrained():
    at = small_settings(new_app())
    assert "only rank models **on the same data**" in texts(at) and "You et al." in texts(at)
    assert "Nothing ranked yet on animals" in texts(at)
    at.button(key="rank_start").click().run()
    assert not at.exception
    poll(at, ranked, timeout=240)
    table = rank_table(at)
    from tl_core.engine.ranking import available

    bundled = set(available("vision")[0])  # every vision backbone whose weights this machine has
    n = 2 * len(bundled)  # each with its random-init copy
    assert list(table["#"]) == list(range(1, n + 1))
    assert list(table["LogME"]) == sorted(table["LogME"], reverse=True)
    assert set(table["backbone"]) == bundled and list(table["weights"]).count("random init") == len(bundled)
    # At 32 px the ImageNet features of MobileNetV2 and EfficientNet-Lite0 beat their random-init copies; the
    # Lite1/Lite2 networks, made for 240-260 px, are not asserted at this size.
    for name in ("mobilenet_v2", "efficientnet_lite0"):
        rows = table[table["backbone"] == name]
        assert rows[rows["weights"] == "pretrained"]["#"].item() < rows[rows["weights"] == "random init"]["#"].item()
    assert "test acc" not in table.columns  # no run measured yet
    assert f"animals · {n} backbones ranked on 100 training items" in texts(at)
    assert "at least 3 of these backbones" in texts(at) and "(0 so far)" in texts(at)
    assert at.button(key="rank_check_start").label.startswith(f"Train a feature-extraction run of each ({n} missing)")

    # a refresh (a new session on the same URL) finds the ranking again
    again = go(new_app(s=at.session_state["owner"]), "model")
    assert rank_table(again) is not None and list(rank_table(again)["LogME"]) == list(table["LogME"])


@pytest.mark.slow
def test_check_runs_fill_in_the_measured_accuracy():
    at = small_settings(new_app())
    at.button(key="rank_start").click().run()
    poll(at, ranked, timeout=240)  # the features are reused from the first test: quick
    at.button(key="rank_check_start").click().run()
    assert not at.exception
    poll(at, lambda a: "checking the ranking" not in texts(a) and "runs" in rank_table(a).columns
         and "rank_check_start" not in [b.key for b in a.button], timeout=400)
    table = rank_table(at)
    pretrained = table[table["weights"] == "pretrained"]
    accuracy = pretrained["test acc"].astype(str).str.rstrip("%").astype(float)  # shown as text: "–" when none
    assert accuracy.between(10, 100).all() and (pretrained["runs"] == 1).all()
    from ui import state

    runs = state.store().list_runs(owner=at.session_state["owner"])
    from tl_core.engine.ranking import available

    assert len(runs) == 2 * len(available("vision")[0]) and {r["config"]["mode"] for r in runs} == {"frozen"}
    assert {r["config"]["labels_per_class"] for r in runs} == {10}
    healthy = sum(not r["summary"]["health"] for r in runs)
    page = texts(at)
    if healthy >= 3:
        assert "Kendall's tau between LogME and the measured feature extraction (frozen) test accuracy" in page
    else:  # unhealthy runs (one class predicted) are not read as results
        assert f"({healthy} so far)" in page and "Left out as not results" in page


def _frozen_done(seeds) -> int:
    """Finished feature-extraction runs in this module's store at `seeds` (all on the view's settings)."""
    from ui import state

    return len({(r["config"]["backbone"], r["config"]["pretrained"], r["config"]["seed"])
                for r in state.store().list_runs(with_history=False)
                if r["config"]["mode"] == "frozen" and r["status"] == "completed" and r["config"]["seed"] in seeds})


def test_imagenet_view_waits_for_the_ranking_then_queues_and_cancels_the_missing_runs():
    from tl_core.engine.ranking import available

    n = 2 * len(available("vision")[0])
    at = small_settings(new_app())
    assert "Do better ImageNet models transfer better?" in [h.value for h in at.subheader]
    assert "Kornblith, Shlens and Le" in texts(at)
    if rank_table(at) is None:  # no ranking on these settings yet in this module: the view waits for one
        assert "Rank the backbones above first" in texts(at) and "imagenet_start" not in [b.key for b in at.button]
        at.button(key="rank_start").click().run()
        poll(at, ranked, timeout=240)
    assert at.number_input(key="imagenet_seeds").value == 3  # the default
    label = at.button(key="imagenet_start").label
    assert label == f"Train the missing feature-extraction runs ({3 * n - _frozen_done({0, 1, 2})} of {3 * n} runs)"
    assert len(imagenet_table(at)) == n  # every ranked backbone, measured or not yet
    at.number_input(key="imagenet_seeds").set_value(5).run()  # seeds 0-4: far more runs than finish before the cancel
    at.button(key="imagenet_start").click().run()
    assert not at.exception and "imagenet_cancel" in [b.key for b in at.button]
    assert at.button(key="imagenet_start").disabled and "done · now:" in texts(at)
    at.button(key="imagenet_cancel").click().run()
    poll(at, lambda a: "imagenet_cancel" not in [b.key for b in a.button], timeout=120)
    from ui import state

    states = {j.state for j in state.manager().jobs(at.session_state["owner"]) if j.label == "imagenet_check"}
    assert "cancelled" in states and not at.button(key="imagenet_start").disabled


@pytest.mark.slow
def test_imagenet_view_trains_the_missing_runs_in_the_background_and_plots_them():
    from tl_core.engine.ranking import available

    n = 2 * len(available("vision")[0])
    at = small_settings(new_app())
    at.button(key="rank_start").click().run()
    poll(at, ranked, timeout=240)
    at.number_input(key="imagenet_seeds").set_value(2).run()  # seeds 0 and 1
    todo = 2 * n - _frozen_done({0, 1})
    assert todo and at.button(key="imagenet_start").label.endswith(f"({todo} of {2 * n} runs)")
    at.button(key="imagenet_start").click().run()  # queued: progress and a cancel button while they train
    assert not at.exception and "imagenet_cancel" in [b.key for b in at.button]
    assert at.button(key="imagenet_start").disabled
    poll(at, lambda a: "imagenet_cancel" not in [b.key for b in a.button], timeout=400)
    assert _frozen_done({0, 1}) == 2 * n
    assert f"Every run of this check is in the run store ({2 * n} runs)" in texts(at)
    table = imagenet_table(at)
    assert len(table) == n and set(table["weights"]) == {"pretrained", "random init"}
    pretrained = table[table["weights"] == "pretrained"]
    assert pretrained["ImageNet top-1"].astype(str).str.rstrip("%").astype(float).between(70, 80).all()
    assert (pretrained["seeds"] == 2).all()
    assert "Four backbones from two families" in texts(at) and "Kornblith et al. (2019)" in texts(at)
    chart = at.get("plotly_chart")
    assert chart and "Pearson r (ImageNet top-1 vs frozen)" in chart[-1].proto.spec
