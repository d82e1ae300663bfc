"""The Inspect page through AppTest (the real engine, a real tiny run): both sections, and a clear message for a
run that cannot be inspected (unknown id, cancelled, no saved model). AppTest cannot draw plotly charts or click
them: tests/e2e/test_inspect_browser.py does that in a real browser."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import go, new_app

CONFIG = {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen", "labels_per_class": 8,
          "val_per_class": 5, "test_per_class": 5, "seed": 0}


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("tl_inspect_page")
    mp.setenv("TL_DATA_DIR", str(folder))
    yield folder
    mp.undo()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error", "header",
                                  "subheader") for e in at.get(kind) if isinstance(getattr(e, "value", None), str)]
    return "\n".join(parts)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_no_runs_yet():
    at = go(new_app(), "inspect")
    assert at.title[0].value == "Inspect"
    assert "No runs yet" in texts(at)


def test_runs_that_cannot_be_inspected_say_why():
    from ui import state

    at = go(new_app(), "inspect")
    owner = at.session_state["owner"]
    store = state.store()
    store.create_run(f"cancelled{owner}", CONFIG, owner=owner)
    store.finish(f"cancelled{owner}", "cancelled", {"epochs_done": 1})
    store.create_run(f"nomodel{owner}", CONFIG, owner=owner)
    store.finish(f"nomodel{owner}", "completed", {"classes": [str(d) for d in range(10)], "best_val_acc": 0.5})

    at.switch_page("app_pages/inspect.py").run()
    picker = at.selectbox(key="inspect_run")
    assert any(f"cancelled{owner} (cancelled)" in o for o in picker.options), picker.options  # labels name the state
    assert any(f"nomodel{owner}" in o for o in picker.options), picker.options
    picker.set_value(f"cancelled{owner}").run()
    assert not at.exception
    assert any(f"run cancelled{owner} was cancelled before it finished" in e for e in errors(at)), errors(at)
    at.selectbox(key="inspect_run").set_value(f"nomodel{owner}").run()
    assert any(f"run nomodel{owner} has no saved model" in e for e in errors(at)), errors(at)
    assert "What the model learned" not in texts(at)  # no section is drawn for a run without a model

    unknown = go(new_app(s=owner, run="feedbeef0000"), "inspect")
    assert any("Unknown run 'feedbeef0000'" in e for e in errors(unknown)), errors(unknown)
    assert unknown.selectbox(key="inspect_run").options  # the picker is still there


@pytest.mark.slow
def test_a_real_run_shows_both_sections():
    from tl_core.config import TrainConfig
    from tl_core.engine.training import train
    from ui import state

    at = go(new_app(), "inspect")
    owner = at.session_state["owner"]
    result = train(TrainConfig(**{**CONFIG, "mode": "finetune", "freeze_depth": 6, "epochs": 2, "image_size": 32,
                                   "budget": "fixed"}),
                   store=state.store(), owner=owner)
    at = go(new_app(s=owner, run=result.run_id), "inspect")
    assert at.selectbox(key="inspect_run").value == result.run_id  # ?run= opens on that run
    shown = texts(at)
    assert not errors(at), errors(at)
    for part in ("What the model learned", "Where it fails", "Most confident mistakes", "k-NN accuracy",
                 "Click a cell of the confusion matrix"):
        assert part in shown, part
    labels = [m.label for m in at.metric]
    assert labels == ["k-NN accuracy before", "k-NN accuracy after", "Silhouette before", "Silhouette after"]
    assert any(s.value.startswith("Classes separate") for s in [*at.success, *at.info])
    at.segmented_control(key="inspect_method").set_value("tsne").run()
    assert not at.exception and not errors(at)


@pytest.mark.slow
def test_a_text_run_lists_its_mistakes_as_texts():
    from tl_core.config import TrainConfig
    from tl_core.engine.training import train
    from ui import state

    at = go(new_app(), "inspect")
    owner = at.session_state["owner"]
    result = train(TrainConfig(data="builtin:sentiment", backbone="all-MiniLM-L6-v2", mode="frozen",
                               labels_per_class=10, val_per_class=8, test_per_class=8, epochs=2),
                   store=state.store(), owner=owner)
    at = go(new_app(s=owner, run=result.run_id), "inspect")
    assert not errors(at), errors(at)
    assert "each text into a long list of numbers" in texts(at)
    assert any("features are exactly the pretrained ones" in s.value for s in at.info)  # frozen: no change
    table = at.dataframe[-1].value  # the most confident mistakes, as a table of texts
    assert list(table.columns) == ["text", "true", "predicted", "confidence", "p(true)"]
    assert len(table) and (table["true"] != table["predicted"]).all()
    assert list(table["confidence"]) == sorted(table["confidence"], reverse=True)
