"""The Streamlit pages through AppTest (streamlit.testing.v1): the real engine, no mocks.

Fast checks only (no training here): every page renders, the owner id lives in the
URL, uploads give a report and a bad upload keeps the previous data, the freeze slider
moves the trainable-parameter count. Training runs are in test_app_runs.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest_helpers import APP, go, new_app, png

PAGES = ["home", "data", "model", "train", "compare", "inspect", "explain", "predict", "lesson"]
#: What only each page shows on a fresh server: its title and the first thing it asks for or says.
ONLY_ON = {
    "home": ("Transfer Lab", lambda at: at.button(key="run_demo").label == "Run the classroom demo"),
    "data": ("Data", lambda at: at.radio(key="data_source").value == "builtin:animals"),
    "model": ("Model", lambda at: at.selectbox(key="backbone").value == "mobilenet_v2"),
    "train": ("Train", lambda at: at.button(key="start_run").label == "Start training"),
    "compare": ("Compare", lambda at: at.segmented_control(key="compare_scope").value == "My runs"),
    "inspect": ("Inspect", lambda at: "No runs yet: train one" in at.info[0].value),
    "explain": ("Explain", lambda at: "No finished run on animals yet" in at.info[0].value),
    "predict": ("Predict", lambda at: "No finished runs yet" in at.info[0].value),
    "lesson": ("Lesson", lambda at: at.button(key="lesson_start").label == "Start this lesson"),
}


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("tl_app_pages")
    mp.setenv("TL_DATA_DIR", str(folder))
    yield folder
    mp.undo()


def class_zip(classes=("cat", "dog", "fox"), per_class=6) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, name in enumerate(classes):
            for i in range(per_class):
                zf.writestr(f"pets/{name}/{i}.png", png(tuple(int(v) for v in rng.integers(0, 255, 3))))
        zf.writestr("pets/cat/broken.png", b"not an image at all")
        zf.writestr("__MACOSX/._junk", b"x")
    return buf.getvalue()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in at.get(kind) if isinstance(getattr(e, "value", None), str)]
    return "\n".join(parts)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_page_renders():
    at = new_app()
    assert not at.exception
    for page in [*PAGES[1:], "home"]:  # each switch must land on its page: the title and what only it shows
        go(at, page)
        title, shows = ONLY_ON[page]
        assert [t.value for t in at.title] == [title], page
        assert shows(at), page


def test_home_draws_what_each_demo_run_trains():
    at = new_app()

    def diagram_title() -> str:
        chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("demo_blocks") or "demo_blocks" in c.proto.id)
        return json.loads(chart.proto.spec)["layout"]["title"]["text"]

    assert "5 of 9 blocks frozen" in diagram_title()  # the demo fine-tunes mobilenet_v2 from stage5 on
    at.segmented_control(key="demo_blocks_mode").set_value("frozen").run()
    assert "all 9 blocks frozen, only the new head trains" in diagram_title()
    at.segmented_control(key="demo_blocks_mode").set_value("scratch").run()
    assert "all 9 blocks train from random weights" in diagram_title()


def test_the_demo_button_waits_for_the_warm_up_and_turns_on_by_itself(monkeypatch):
    """A fresh server draws Home at once; the demo button says it is getting ready until the warm-up is done."""
    from ui import warmup

    monkeypatch.setattr(warmup, "is_ready", lambda: False)
    at = new_app()
    button = at.button(key="run_demo")
    assert button.disabled and button.label == "Run the classroom demo"
    assert "Getting ready" in texts(at)

    monkeypatch.setattr(warmup, "is_ready", lambda: True)
    at.run()  # what the button's polling fragment does once the warm-up is done
    assert not at.button(key="run_demo").disabled
    assert "Getting ready" not in texts(at)


def test_no_legacy_pages_folder():
    """A folder named pages/ beside app.py switches Streamlit to its old multipage mode for the whole server
    whenever the first visitor opens a deep link (/train): that run skips app.py and st.navigation.
    The page files therefore live in app_pages/."""
    assert not (Path(APP).parent / "pages").exists()


def test_owner_is_kept_in_the_url():
    at = new_app()
    owner = at.session_state["owner"]
    assert at.query_params["s"] == owner
    go(at, "data")
    assert at.query_params["s"] == owner  # page switches keep it
    again = new_app(s=owner)  # a browser refresh: same URL, new session
    assert again.session_state["owner"] == owner
    junk = new_app(s="<script>")  # anything that is not an id is replaced
    assert junk.session_state["owner"] != "<script>"


def test_upload_report_and_bad_uploads_keep_the_dataset():
    at = go(new_app(), "data")
    at.radio(key="data_source").set_value("upload").run()
    assert "Upload a file" in texts(at)
    at.file_uploader(key="upload").set_value(("pets.zip", class_zip(), "application/zip")).run()
    assert not at.exception and not at.error
    report = texts(at)
    assert "3 classes:" in report and "cat (6)" in report and "fox (6)" in report
    assert metric(at, "Skipped") == "1"
    assert "__MACOSX" in report  # the note on what was ignored
    assert any(df.value.shape[0] == 1 for df in at.dataframe)  # the skipped-files table: broken.png and why
    assert at.session_state["upload_ds"].classes == ["cat", "dog", "fox"]

    one_class = class_zip(classes=("cat",))
    at.file_uploader(key="upload").set_value(("one.zip", one_class, "application/zip")).run()
    assert at.error and "at least 2 class folders" in at.error[0].value
    assert at.session_state["upload_ds"].classes == ["cat", "dog", "fox"]  # kept
    assert "cat (6)" in texts(at)

    at.file_uploader(key="upload").set_value(("notes.zip", b"hello, not a zip", "application/zip")).run()
    assert at.error and not at.exception
    assert at.session_state["upload_ds"].classes == ["cat", "dog", "fox"]

    # Settings and the upload survive a trip to another page.
    at.number_input(key="labels_per_class").set_value(4).run()
    go(at, "model")
    assert "pets.zip" in texts(at)
    go(at, "data")
    assert at.number_input(key="labels_per_class").value == 4
    assert "Split: 6 training, 6 validation, 6 test" in texts(at)  # 6 per class: a third each held out


def test_csv_upload_and_split_error():
    at = go(new_app(), "data")
    at.radio(key="data_source").set_value("upload").run()
    rows = "\n".join(f"{'good' if i % 2 else 'bad'} text number {i},{'pos' if i % 2 else 'neg'}" for i in range(20))
    at.file_uploader(key="upload").set_value(("reviews.csv", f"text,label\n{rows}\n".encode(), "text/csv")).run()
    assert not at.exception and not at.error
    assert "2 classes:" in texts(at)
    assert at.text_input(key="text_column").value == at.text_input(key="label_column").value == ""  # detected
    at.text_input(key="label_column").set_value("topic").run()  # a column the file lacks: one error, data kept
    assert [e.value for e in at.error] == ["no label column named 'topic' in reviews.csv; the columns are: text, label"]
    assert "Still using the previously loaded dataset: reviews.csv." in texts(at) and "2 classes:" in texts(at)
    at.text_input(key="label_column").set_value("label").run()
    assert not at.error and "2 classes:" in texts(at)
    at.radio(key="data_source").set_value("builtin:digits").run()
    assert "10 classes:" in texts(at)


def test_freeze_slider_changes_trainable_parameters():
    at = go(new_app(), "model")
    assert at.selectbox(key="backbone").value == "mobilenet_v2"
    frozen = metric(at, "Trainable parameters")
    assert frozen == f"{1280 * 10 + 10:,}"  # frozen: only the head (animals: 10 classes)
    at.slider(key="freeze_depth").set_value(2).run()
    assert at.radio(key="mode").value == "finetune"  # dragging the slider switches to fine-tuning
    k2 = int(metric(at, "Trainable parameters").replace(",", ""))
    at.slider(key="freeze_depth").set_value(7).run()
    k7 = int(metric(at, "Trainable parameters").replace(",", ""))
    assert k2 > k7 > 1280 * 10 + 10
    assert "frozen" in texts(at)
    at.radio(key="mode").set_value("scratch").run()
    assert int(metric(at, "Trainable parameters").replace(",", "")) > k2
    assert not [c for c in at.checkbox if c.key == "lp_ft"]  # LP-FT is a fine-tuning option only
    at.radio(key="mode").set_value("finetune").run()
    at.checkbox(key="lp_ft").check().run()
    go(at, "train")
    assert "head trained first on frozen features (LP-FT)" in texts(at)
    go(at, "model")
    at.radio(key="mode").set_value("scratch").run()
    # The choices reach the Train page summary.
    go(at, "train")
    assert "From scratch" in texts(at) and "LP-FT" not in texts(at)
    go(at, "model")
    assert at.radio(key="mode").value == "scratch" and at.slider(key="freeze_depth").value == 7


def _diagram_title(at: AppTest) -> str:
    chart = next(c for c in at.get("plotly_chart") if "block_diagram" in c.proto.id)
    return json.loads(chart.proto.spec)["layout"]["title"]["text"]


def test_model_page_offers_the_recipes_and_they_survive_a_refresh():
    at = go(new_app(), "model")
    owner = at.session_state["owner"]
    picker = at.selectbox(key="recipe")
    assert picker.options == ["None: the mode and freeze depth alone",
                              "LP-FT: linear probe, then fine-tune (Kumar et al. 2022)",
                              "Gradual unfreezing (Howard & Ruder 2018)",
                              "Discriminative learning rates (Howard & Ruder 2018)",
                              "Surgical fine-tuning (Lee et al. 2023)",
                              "BatchNorm adaptation (AdaBN) (Li et al. 2016)"]

    picker.set_value("gradual").run()  # the preset sets what it implies, and the drawing shows it
    assert at.radio(key="mode").value == "finetune" and at.slider(key="freeze_depth").value == 0
    assert not at.slider(key="freeze_depth").disabled
    assert "Universal Language Model Fine-tuning" in texts(at) and "slanted triangular" in texts(at)
    assert _diagram_title(at).startswith("Gradual unfreezing (ULMFiT)")

    at.selectbox(key="recipe").set_value("adabn").run()
    assert at.radio(key="mode").value == "frozen" and _diagram_title(at).startswith("AdaBN: all 9 blocks frozen")
    assert "Revisiting Batch Normalization" in texts(at)

    at.selectbox(key="recipe").set_value("lp-ft").run()
    assert at.radio(key="mode").value == "finetune" and at.checkbox(key="lp_ft").value
    at.checkbox(key="lp_ft").uncheck().run()  # unticking LP-FT drops the LP-FT preset
    assert at.selectbox(key="recipe").value == "none"

    at.selectbox(key="recipe").set_value("surgical").run()
    assert at.selectbox(key="surgical_block").value == 8  # the last block unless chosen
    assert at.slider(key="freeze_depth").disabled  # the block picker decides what trains, and the page says so
    assert "Surgical fine-tuning ignores the freeze depth: the block picked under *Block to tune*" in texts(at)
    at.selectbox(key="surgical_block").set_value(3).run()
    assert _diagram_title(at) == "Surgical fine-tuning: only stage3 of 9 blocks trains, with the new head"
    assert metric(at, "Trainable parameters") == f"{39_696 + 1280 * 10 + 10:,}"
    go(at, "train")
    summary = texts(at)
    assert "recipe: Surgical fine-tuning (Lee et al. 2023)" in summary and "(k=" not in summary
    assert "Only stage3 and the new head train" in summary and not at.error

    again = go(new_app(s=owner), "model")  # a refresh keeps the preset and its block
    assert again.selectbox(key="recipe").value == "surgical" and again.selectbox(key="surgical_block").value == 3
    go(again, "train")
    assert texts(again) == summary

    go(again, "model")
    again.radio(key="mode").set_value("frozen").run()  # a mode the recipe cannot use drops the recipe
    assert again.selectbox(key="recipe").value == "none" and not again.warning
    assert not again.slider(key="freeze_depth").disabled and "ignores the freeze depth" not in texts(again)


# ---- a refresh, a second tab, the session URL elsewhere --------------------------------------------------------
def test_refresh_restores_settings_and_upload():
    at = go(new_app(), "data")
    owner = at.session_state["owner"]
    at.radio(key="data_source").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("pets.zip", class_zip(per_class=8), "application/zip")).run()
    at.number_input(key="labels_per_class").set_value(3).run()
    go(at, "model")
    at.radio(key="mode").set_value("finetune").run()
    at.slider(key="freeze_depth").set_value(6).run()
    at.number_input(key="epochs").set_value(15).run()
    at.number_input(key="image_size").set_value(64).run()
    go(at, "train")
    before = texts(at)
    # 15 epochs asked; the fine-tune trains to convergence: 9 items are one step an epoch, at most 300 epochs
    assert "pets.zip" in before and "Fine-tune (k=6)" in before and "300 epochs of 1 step" in before and "64 px" in before

    for again in (new_app(s=owner), new_app(s=owner)):  # a refresh, and the URL in a second tab
        go(again, "data")
        assert "Using **pets.zip**" in texts(again)  # the uploader is empty; the kept file is named beside it
        assert again.session_state["upload_ds"].classes == ["cat", "dog", "fox"]
        assert again.number_input(key="labels_per_class").value == 3
        go(again, "model")
        assert again.radio(key="mode").value == "finetune" and again.slider(key="freeze_depth").value == 6
        assert again.number_input(key="epochs").value == 15
        go(again, "train")
        assert texts(again) == before  # the same summary: Start trains exactly this
        from ui import services

        assert again.session_state["_kept"]["epochs"] == 15 and services.sessions().read_upload(owner)[0] == "pets.zip"

    # Remove forgets the file, also for the next refresh; the data page asks for one again.
    go(at, "data")
    at.file_uploader(key="upload").set_value(None).run()
    at.button(key="clear_upload").click().run()
    assert at.session_state.get("upload_ds") is None and "Upload a file" in texts(at)
    later = go(new_app(s=owner), "train")
    assert "No dataset loaded" in texts(later) and later.button(key="start_run").disabled


def test_a_stale_or_edited_session_file_falls_back_to_the_defaults():
    """Restored settings pass their checks (ui.settings): a value no widget can hold reads as the default."""
    from ui import services

    owner = "00000000feedbeef"
    services.sessions().update_settings(owner, {"epochs": 1000, "mode": "sideways", "lr": "fast", "batch_size": 33,
                                                "budget": "fixed", "no_such_setting": 1})
    at = new_app(s=owner)
    assert at.session_state["_kept"] == {"budget": "fixed"}  # the only known and valid one
    go(at, "model")
    assert at.number_input(key="epochs").value == 10 and at.radio(key="mode").value == "frozen"
    assert at.selectbox(key="lr").value == "auto" and at.selectbox(key="batch_size").value == 32
    assert at.selectbox(key="budget").value == "fixed"
    # the choice fits a half-width box at 800 px (its label is short), and the caption below it says what it means
    assert len(at.selectbox(key="budget").format_func("fixed")) <= 20
    assert any("Every arm trains exactly the epochs set" in c.value for c in at.caption)
    go(at, "train")
    assert "10 curve points" in texts(at) and not at.error


def test_sessions_never_see_each_others_settings():
    a, b = go(new_app(), "model"), go(new_app(), "model")
    a.number_input(key="epochs").set_value(7).run()
    assert go(new_app(s=b.session_state["owner"]), "model").number_input(key="epochs").value == 10
    assert go(new_app(s=a.session_state["owner"]), "model").number_input(key="epochs").value == 7


def test_a_failed_upload_shows_one_error_about_itself():
    at = go(new_app(), "data")
    at.radio(key="data_source").set_value("upload").run()
    rows = "".join(f"text number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20))
    at.file_uploader(key="upload").set_value(("good.csv", f"text,label\n{rows}".encode(), "text/csv")).run()
    assert not at.error
    semi = "".join(f"text number {i};{'pos' if i % 2 else 'neg'}\n" for i in range(20))
    at.file_uploader(key="upload").set_value(("bad.csv", f"text,label\n{semi}".encode(), "text/csv")).run()
    assert [e.value for e in at.error] == [
        "bad.csv: 20 of 20 rows have fewer fields than the header's 2 when split at a comma; check the delimiter "
        "between the fields and the quoting of texts that contain it"]
    assert "Still using the previously loaded dataset: good.csv" in texts(at)
    at.file_uploader(key="upload").set_value(("notes.zip", b"hello, not a zip", "application/zip")).run()
    assert len(at.error) == 1 and at.error[0].value.startswith("notes.zip is not a zip archive but a text file")


def test_csv_counts_texts_and_the_train_summary_shows_the_real_split():
    """60 rows in 3 classes: fewer than the 20 validation items per class asked for can be held out (6 here: at
    most a third of each class, and a third for test); the Data page and the Train summary give the real split."""
    from tl_core.inputs import data

    at = go(new_app(), "data")
    at.radio(key="data_source").set_value("upload").run()
    rows = "".join(f"sentence number {i},{'abc'[i % 3]}\n" for i in range(60))
    at.file_uploader(key="upload").set_value(("sixty.csv", f"text,label\n{rows}".encode(), "text/csv")).run()
    split = data.make_split(at.session_state["upload_ds"], val_per_class=20, labels_per_class=None, seed=0)
    held = len(split.val) // 3
    assert held < 20 and len(split.val) == 3 * held == len(split.test)
    assert (f"Split: {len(split.train)} training, {len(split.val)} validation, {len(split.test)} test items."
            in texts(at))
    balance = next(c for c in at.get("plotly_chart") if "class_balance" in c.proto.id)
    spec = json.loads(balance.proto.spec)
    assert spec["layout"]["yaxis"]["title"]["text"] == "texts (count)" and "image" not in json.dumps(spec["data"])
    go(at, "train")
    assert f"{held} validation/class" in texts(at) and "20 validation/class" not in texts(at)
    assert (f"({len(split.train)} training, {len(split.val)} validation and {len(split.test)} test items)"
            in texts(at))


def _fake_run(store, run_id, owner, data, mode, best, created, classes):
    """A completed run as the store records it (Predict's choice of default reads only these records)."""
    store.create_run(run_id, {"data": data, "backbone": "mobilenet_v2", "mode": mode, "labels_per_class": 10,
                              "val_per_class": 20, "seed": 0}, owner=owner)
    store.finish(run_id, "completed", {"best_val_acc": best, "final_val_acc": best, "classes": classes})
    with store._connect() as db:
        db.execute("UPDATE runs SET created_at=? WHERE run_id=?", (created, run_id))


def test_predict_opens_on_the_best_healthy_run_on_the_current_data():
    from ui import services

    at = go(new_app(), "data")
    owner = at.session_state["owner"]
    at.radio(key="data_source").set_value("builtin:digits").run()
    digits, animals = [str(d) for d in range(10)], ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    store = services.store()
    _fake_run(store, f"frozen{owner}", owner, "builtin:digits", "frozen", 0.70, "2026-01-01T10:01:00", digits)
    _fake_run(store, f"finetune{owner}", owner, "builtin:digits", "finetune", 0.85, "2026-01-01T10:02:00", digits)
    _fake_run(store, f"scratch{owner}", owner, "builtin:digits", "scratch", 0.105, "2026-01-01T10:03:00", digits)
    _fake_run(store, f"animals{owner}", owner, "builtin:animals", "frozen", 0.95, "2026-01-01T10:04:00", animals)

    go(at, "predict")
    picker = at.selectbox(key="predict_run")
    assert picker.value == f"finetune{owner}"  # not the newest run, not the one at chance, not other data
    assert f"animals{owner}" not in picker.options and all(o.startswith("digits · ") for o in picker.options)
    assert any("at chance" in o for o in picker.options)
    assert not at.warning
    picker.set_value(f"scratch{owner}").run()
    assert at.warning and "at chance level" in at.warning[0].value
    at.toggle(key="predict_every").set_value(True).run()
    assert any(o.startswith("animals · ") for o in at.selectbox(key="predict_run").options)


def test_compare_overlays_one_comparison_of_completed_runs():
    from ui import services

    at = new_app()
    owner = at.session_state["owner"]
    store, digits = services.store(), [str(d) for d in range(10)]
    for rid, mode, when in [("frozen", "frozen", "10:01"), ("finetune", "finetune", "10:02"),
                            ("scratch", "scratch", "10:03")]:
        _fake_run(store, f"{rid}{owner}", owner, "builtin:digits", mode, 0.5, f"2026-01-02T{when}:00", digits)
    store.create_run(f"cancelled{owner}", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "scratch",
                                           "labels_per_class": 10, "val_per_class": 20, "seed": 0}, owner=owner)
    store.add_epoch(f"cancelled{owner}", {"epoch": 1, "train_loss": 2.3, "train_acc": 0.1, "val_loss": 2.3,
                                          "val_acc": 0.1, "seconds": 1.0})
    store.finish(f"cancelled{owner}", "cancelled", {})  # the newest run: one point, never a default
    go(at, "compare")
    assert sorted(at.multiselect(key="compare_runs").value) == sorted(f"{r}{owner}" for r in ("frozen", "finetune",
                                                                                              "scratch"))


def test_the_sweeps_seed_count_is_kept_across_pages_but_not_across_a_refresh():
    """The sweep's seed count is a setting that does not persist (ui.settings): the session file never holds it."""
    from ui import services

    at = new_app()
    owner = at.session_state["owner"]
    _fake_run(services.store(), f"one{owner}", owner, "builtin:digits", "frozen", 0.5, "2026-01-03T10:00:00",
              [str(d) for d in range(10)])
    go(at, "compare")
    assert at.number_input(key="efficiency_seeds").value == 3
    at.number_input(key="efficiency_seeds").set_value(2).run()
    go(at, "model")
    go(at, "compare")
    assert at.number_input(key="efficiency_seeds").value == 2
    assert "efficiency_seeds" not in services.sessions().load(owner).settings
    assert go(new_app(s=owner), "compare").number_input(key="efficiency_seeds").value == 3


def test_a_ranking_error_goes_when_the_settings_it_ran_with_change(monkeypatch):
    """The error speaks for the settings the ranking ran with: another mode (or recipe) clears it."""
    import time

    from tl_core.engine import ranking as engine_ranking
    from tl_core.errors import UserError

    def refuse(config, **_):
        raise UserError(f"cannot rank in {config.mode} mode here")

    monkeypatch.setattr(engine_ranking, "rank_backbones", refuse)
    at = go(new_app(), "model")
    at.button(key="rank_start").click().run()
    deadline = time.monotonic() + 30
    while not any("The ranking failed" in e.value for e in at.error) and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    mode = at.radio(key="mode").value
    assert any(f"cannot rank in {mode} mode here" in e.value for e in at.error), [e.value for e in at.error]

    other = "finetune" if mode != "finetune" else "frozen"
    at.radio(key="mode").set_value(other).run()
    assert not any("The ranking failed" in e.value for e in at.error), [e.value for e in at.error]
    assert "The last ranking failed with other settings" in texts(at)

    at.radio(key="mode").set_value(mode).run()  # the settings it failed with: its error is theirs again
    assert any("The ranking failed" in e.value for e in at.error)


def test_the_data_page_names_the_split_the_data_allows_at_its_inputs():
    """Validation and test take at most a third of a class: the inputs say what that leaves, not only the table."""
    at = go(new_app(), "data")
    at.number_input(key="val_per_class").set_value(5000).run()
    at.number_input(key="test_per_class").set_value(5000).run()
    split = next(df.value for df in at.dataframe if "validation" in df.value.columns)
    capped_val = "–".join(dict.fromkeys(str(v) for v in (split["validation"].min(), split["validation"].max())))
    capped_test = "–".join(dict.fromkeys(str(v) for v in (split["test"].min(), split["test"].max())))
    captions = [c.value for c in at.caption]
    assert f"capped at {capped_val} by the data" in captions, captions
    assert f"capped at {capped_test} by the data" in captions, captions

    at.number_input(key="val_per_class").set_value(1).run()  # as asked: no note
    assert not any(c.value.startswith("capped at 1 ") for c in at.caption)


def _stored_run(store, run_id: str, owner: str, *, data: str, val_acc: float, labels: int | None, mode: str = "frozen",
                status: str = "completed") -> None:
    """A finished run in the store as the engine records one (3 classes, 10 validation and test items each)."""
    config = {"data": data, "backbone": "mobilenet_v2", "mode": mode, "labels_per_class": labels, "seed": 0,
              "val_per_class": 20, "test_per_class": 50, "epochs": 1,
              "freeze_depth": None if mode != "finetune" else 2}
    store.create_run(run_id, config, owner=owner, device="cpu")
    store.add_epoch(run_id, {"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "train_acc": val_acc, "val_acc": val_acc,
                            "seconds": 1.0})
    summary = {} if status != "completed" else {
        "test_acc": val_acc, "best_val_acc": val_acc, "final_val_acc": val_acc, "wall_s": 1.5, "health": [],
        "classes": ["a", "b", "c"], "n_train": 30, "n_val": 30, "n_test": 30, "selected_epoch": 1}
    store.finish(run_id, status, summary)


def test_compare_names_uploads_and_empty_cells_as_a_class_reads_them():
    from ui import services

    at = new_app()
    owner = at.session_state["owner"]
    store = services.store()
    upload = "upload:digits_upload.zip@eb9045a1"
    _stored_run(store, "cmpa1", owner, data=upload, val_acc=0.8, labels=None)
    _stored_run(store, "cmpa2", owner, data=upload, val_acc=0.0, labels=5, status="cancelled")
    go(at, "compare")
    table = at.dataframe[0].value
    rows = {r["run"]: r for r in table.to_dict("records")}
    assert rows["cmpa1"]["data"] == "your upload digits_upload.zip"
    assert rows["cmpa1"]["labels/class"] == "all" and rows["cmpa1"]["k"] == "\u2013"
    assert rows["cmpa2"]["test acc"] == "\u2013" and rows["cmpa1"]["test acc"] == "80.0%"
    assert "None" not in table.astype(str).to_string()
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["data"]["width"] >= 7 * len("your upload digits_upload.zip")  # the whole name, not cut
    assert sum(config[c]["width"] for c in table.columns) <= 1120

    shown = "\n".join([texts(at), *(str(o) for box in [*at.selectbox, *at.multiselect] for o in box.options)])
    assert "upload:" not in shown and "@eb9045a1" not in shown, shown
    assert at.selectbox(key="gap_group").options == ["your upload digits_upload.zip · mobilenet_v2"]
    assert "your upload digits_upload.zip" in at.selectbox(key="compare_data").options
    assert ("Scored on 10 validation (asked 20, capped by the data) and 10 test (asked 50, capped by the data) "
            "items per class.") in texts(at)
