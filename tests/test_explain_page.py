"""The Explain page without a browser (AppTest): what it says when there is nothing, or nothing it can load, to
explain. The maps themselves are checked in a real browser (tests/e2e/test_explain_browser.py)."""

from __future__ import annotations

import pytest

from apptest_helpers import go, new_app


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("tl_explain_page")
    mp.setenv("TL_DATA_DIR", str(folder))
    yield folder
    mp.undo()



def test_explain_without_runs_says_how_to_get_some():
    at = go(new_app(), "explain")
    assert at.title[0].value == "Explain"
    assert "Where did the model look?" in at.markdown[0].value
    assert "what its ImageNet features already pick out" in at.markdown[0].value
    assert at.info and "No finished run on animals yet" in at.info[0].value


def test_runs_without_saved_weights_get_one_clear_line_each():
    from ui import state

    at = new_app()
    store = state.store()
    for rid, mode in (("nofile1", "frozen"), ("nofile2", "finetune")):
        store.create_run(rid, {"data": "builtin:animals", "backbone": "mobilenet_v2", "mode": mode, "seed": 0,
                               "val_per_class": 20}, owner="t")
        store.finish(rid, "completed", {"best_val_acc": 0.8, "classes": list("abcdefghij")})
    go(at, "explain")
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and all("has no saved model" in e and "train it again" in e for e in errors), errors
    assert "From scratch" in at.info[0].value and "--mode scratch --seed 0 --val-per-class 20" in at.info[0].value
    assert "Fine-tune**:" not in at.info[0].value  # only what is missing is listed
    assert not at.exception
