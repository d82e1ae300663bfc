"""Training through the Streamlit pages (AppTest, the real engine): start, watch, cancel, queue,
compare, delete, predict, export, and the classroom demo.

Tiny settings (digits, 32 px, 5 labels and 5 validation items per class, mobilenet_v2 frozen)
finish in seconds on two CPU cores. One training slot (TL_MAX_CONCURRENT_RUNS=1) so the queue
shows. The tests share one run store and run in file order.
"""

from __future__ import annotations

import io
import json
import re
import time

import numpy as np
import pytest
from PIL import Image
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from apptest_helpers import go, new_app

pytestmark = pytest.mark.slow  # real training runs

SHARED: dict = {}


@pytest.fixture(scope="module", autouse=True)
def env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TL_DATA_DIR", str(tmp_path_factory.mktemp("tl_app_runs")))
    mp.setenv("TL_MAX_CONCURRENT_RUNS", "1")
    mp.setenv("TL_DEMO_EPOCHS", "3")  # the smallest demo whose from-scratch run is healthy, every arm 3 epochs
    mp.setenv("TL_DEMO_BUDGET", "fixed")
    mp.setenv("TL_DEMO_LABELS_PER_CLASS", "10")
    mp.setenv("TL_DEMO_SEEDS", "2")
    yield
    from ui import services  # leave no training thread behind

    manager = services._manager(services.data_root(), 1)
    for job in manager.jobs():
        manager.cancel(job.job_id)
    for job in manager.jobs():
        manager.wait(job.job_id, timeout=120)
    mp.undo()






def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in at.get(kind) if isinstance(getattr(e, "value", None), str)]
    parts += [p.proto.text for p in at.get("progress")]
    return "\n".join(parts)


def poll(at: AppTest, done, timeout: float = 120, every: float = 0.3) -> AppTest:
    """Rerun like the polling fragment does until `done(at)`; fail with what the page said."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if done(at):
            return at
        time.sleep(every)
    raise AssertionError(f"timed out; the page said:\n{texts(at)}")


def tiny_settings(at: AppTest, *, mode="frozen", epochs=2, labels=5) -> AppTest:
    go(at, "data")
    at.radio(key="data_source").set_value("builtin:digits").run()
    at.number_input(key="labels_per_class").set_value(labels).run()
    at.number_input(key="val_per_class").set_value(5).run()
    at.number_input(key="test_per_class").set_value(5).run()
    go(at, "model")
    at.radio(key="mode").set_value(mode).run()
    at.number_input(key="image_size").set_value(32).run()
    at.number_input(key="epochs").set_value(epochs).run()
    at.selectbox(key="budget").set_value("fixed").run()  # a few steps: these tests check the pages, not the protocol
    return go(at, "train")


def test_tiny_run_finishes_and_shows_results():
    at = tiny_settings(new_app())
    assert "digits · 10 classes · 5 labels/class · 5 validation/class · 5 test/class" in texts(at)
    assert "head fitted to convergence" in texts(at) and "2 curve points" in texts(at)  # frozen: a convex fit
    assert at.button(key="start_run").label == "Start training"
    at.button(key="start_run").click().run()
    assert not at.exception
    job_id = at.session_state["active_job"]
    poll(at, lambda a: "took" in texts(a))
    page = texts(at)
    assert "completed" in page and " on cpu" in page
    assert any(m.label == "Test accuracy" for m in at.metric)
    assert any(m.label.startswith("Shifted test (blur)") for m in at.metric)
    assert any(df.value.shape == (10, 5) for df in at.dataframe)  # per-class table
    assert at.session_state["active_job"] == job_id  # reruns and polls never started another run
    from ui import services

    jobs = services.manager().jobs(at.session_state["owner"])
    assert [j.job_id for j in jobs] == [job_id]
    SHARED.update(owner=at.session_state["owner"], run_id=jobs[0].run_id)

    # Moving widgets afterwards does not start or break anything; the run stays visible after a page trip.
    go(at, "model")
    at.number_input(key="epochs").set_value(3).run()
    go(at, "train")
    assert "took" in texts(at) and len(services.manager().jobs(SHARED["owner"])) == 1

    # A refresh (new session, same URL) still shows the run.
    again = go(new_app(s=SHARED["owner"]), "train")
    assert SHARED["run_id"] in texts(again) and "took" in texts(again)


def test_a_fine_tune_shows_which_blocks_changed():
    at = tiny_settings(new_app(), mode="finetune", epochs=1)
    at.button(key="start_run").click().run()
    poll(at, lambda a: "took" in texts(a))
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith("_change") or "_change" in c.proto.id]
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    assert spec["layout"]["title"]["text"] == "What fine-tuning changed"
    assert len(spec["data"][0]["x"]) == 9  # one bar per mobilenet_v2 block
    assert "Measuring which blocks" not in texts(at)  # a progress note, gone once the run has finished


def shown_run_header(at: AppTest) -> str:
    """The shown run's header line ("**Run <id>** — data · backbone · mode · ...")."""
    lines = re.findall(r"\*\*Run [0-9a-f]{6,}\*\* —[^\n]*", texts(at))
    assert len(lines) == 1, texts(at)
    return lines[0]


def shown_run(at: AppTest) -> str:
    """The run the Train page shows ("**Run <id>** — ...")."""
    ids = re.findall(r"\*\*Run ([0-9a-f]{6,})\*\* —", texts(at))
    assert len(ids) == 1, texts(at)
    return ids[0]


def test_train_shows_the_latest_run_and_lists_the_sessions_runs():
    from ui import services

    at = tiny_settings(new_app(), mode="frozen", epochs=1)
    owner = at.session_state["owner"]
    at.button(key="start_run").click().run()
    poll(at, lambda a: "took" in texts(a))
    frozen = shown_run(at)
    tiny_settings(at, mode="finetune", epochs=1)
    at.button(key="start_run").click().run()
    poll(at, lambda a: "took" in texts(a) and shown_run(a) != frozen)
    finetune = shown_run(at)
    go(at, "model")
    go(at, "train")
    assert shown_run(at) == finetune  # the newest, not the first
    assert len(at.selectbox(key="train_view").options) == 2
    at.selectbox(key="train_view").select_index(1).run()  # the older one, on request
    assert shown_run(at) == frozen

    # The session URL opened again, and again after a server restart (the manager forgets; the store remembers):
    # the newest run is shown and both are listed.
    for restart in (False, True):
        if restart:
            services._manager.clear()
        again = go(new_app(s=owner), "train")
        assert shown_run(again) == finetune, restart
        labels = again.selectbox(key="train_view").options  # as shown: newest first
        assert len(labels) == 2 and finetune in labels[0] and frozen in labels[1], labels
        assert "From scratch" not in " ".join(labels)  # only this session's runs


def test_queue_and_cancel():
    at = tiny_settings(new_app(), mode="scratch", epochs=200, labels=0)
    at.button(key="start_run").click().run()
    long_job = at.session_state["active_job"]
    poll(at, lambda a: "epoch 1/200" in texts(a))  # training, mid-epoch
    at.button(key="start_run").click().run()  # one slot: the second run waits
    queued = at.session_state["active_job"]
    assert queued != long_job
    assert "queued (position 1) — 1 run is training on this server" in texts(at)

    at.button(key="cancel_run").click().run()  # cancels the run on view: the queued one
    poll(at, lambda a: "cancelled after 0 of 200 epochs" in texts(a), timeout=30)

    at.selectbox(key="train_view").set_value(long_job).run()
    at.button(key="cancel_run").click().run()
    poll(at, lambda a: "cancelled after" in texts(a) and at.session_state["train_view"] == long_job, timeout=30)
    from ui import services

    assert services.manager().snapshot(long_job).state == "cancelled"


def test_predict_and_export():
    at = go(new_app(s=SHARED["owner"]), "predict")
    assert at.selectbox(key="predict_run").value == SHARED["run_id"]  # this session's run comes first
    buf = io.BytesIO()
    Image.fromarray(np.zeros((40, 30, 3), dtype=np.uint8)).save(buf, "PNG")
    at.file_uploader(key="predict_files").set_value(
        [("seven.png", buf.getvalue(), "image/png"), ("bad.png", b"garbage", "image/png")]).run()
    assert not at.exception
    assert at.error and "bad.png" in at.error[0].value and "unreadable image" in at.error[0].value
    tops = [m.value for m in at.markdown if re.fullmatch(r"\*\*\d\*\* \(\d{1,3}\.\d%\)", m.value)]
    assert len(tops) == 1, texts(at)  # seven.png's top class and its probability ("**3** (41.2%)"); none for bad.png
    assert at.download_button(key="download_model").label == "Download model (zip)"


def test_compare_lists_and_deletes():
    at = go(new_app(s=SHARED["owner"]), "compare")
    table = at.dataframe[0].value
    assert SHARED["run_id"] in set(table["run"])
    assert {"run", "when", "status", "data", "backbone", "mode", "k", "labels/class", "test acc", "val acc",
            "health", "seed", "seconds"} <= set(table.columns)
    csv = at.download_button(key="download_csv")
    assert csv.label == "Download table (CSV)" and csv.proto.url.endswith(".csv")  # served as text/csv
    # Readable on a projector: the run id pinned at the left, the accuracies next to it (an 800 px window shows
    # them), and every column within the 1120 px a 1280 px screen gives the page.
    assert list(table.columns)[:3] == ["run", "test acc", "val acc"]
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["run"]["pinned"] is True
    assert sum(config[c]["width"] for c in table.columns) <= 1120
    assert sum(config[c]["width"] for c in list(table.columns)[:3]) <= 800 - 2 * 16 - 300
    assert "over training from scratch" in texts(at)
    at.multiselect(key="delete_runs").set_value([SHARED["run_id"]]).run()
    at.button(key="delete_runs_btn").click().run()
    assert not at.exception
    from ui import services

    assert services.store().get_run(SHARED["run_id"]) is None
    assert "Deleted 1 run" in texts(at)


def test_classroom_demo():
    from ui import warmup

    at = new_app()
    assert warmup.wait_ready(600), "the warm-up never ended"
    at.run()  # the button is on once the warm-up is done
    assert not at.button(key="run_demo").disabled
    at.button(key="run_demo").click().run()
    at.button(key="run_demo").click().run()  # a second click while it runs starts nothing
    assert "already running" in texts(at)
    from ui import services

    assert len(services.manager().jobs(at.session_state["owner"])) == 4  # frozen over 2 seeds (TL_DEMO_SEEDS), 2 more
    poll(at, lambda a: "over training from scratch" in "\n".join(s.value for s in a.success), timeout=300, every=1)
    assert len(services.manager().jobs(at.session_state["owner"])) == 4
    sentence = "\n".join(s.value for s in at.success)
    assert sentence.startswith("With 10 labels per class, ") and "2 seeds against 1" in sentence
    assert "frozen" in sentence and "same short budget" in sentence  # the tests' demo says its budget
    assert "frozen" in texts(at) and "\u00b1" in texts(at)  # the details line: every arm, with its spread
    assert all(j.state == "completed" for j in services.manager().jobs(at.session_state["owner"]))


MODEL_WIDGETS = {"backbone": "selectbox", "freeze_depth": "slider", "mode": "radio", "epochs": "number_input",
                 "recipe": "selectbox"}


def _lost_state(at: AppTest) -> list[WidgetState]:
    """The Model page's widgets as a browser sends them after losing their state (a page switch or a rerun that
    cut a script run short, streamlit/streamlit#7338): each at its own default."""
    states = []
    for key, kind in MODEL_WIDGETS.items():
        proto = getattr(at, kind)(key=key).proto
        state = WidgetState(id=proto.id)
        if kind in ("selectbox", "radio"):
            state.string_value = proto.options[proto.default]
        elif kind == "slider":
            state.double_array_value.data.extend(proto.default)
        else:
            state.double_value = proto.default
        states.append(state)
    return states


def _rerun_with(at: AppTest, sent: list[WidgetState]) -> AppTest:
    """A rerun of the shown page whose widget states also carry `sent` (they replace the page's own)."""
    states = at._tree.get_widget_states()
    ids = {w.id for w in sent}
    kept = [w for w in states.widgets if w.id not in ids]
    del states.widgets[:]
    states.widgets.extend(kept + sent)
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_browser_that_loses_the_model_pages_widget_state_changes_no_setting():
    """A browser that loses a widget's state shows and sends the widget's own default, and one that switched pages
    while a script run was cut short sends the old page's widgets with its next reruns, which fires their
    on_change (streamlit/streamlit#8827). With Streamlit's own defaults a student's Start would train the backbone
    list's first entry as a full fine-tune (freeze depth 0, which the slider's callback turns into Fine-tune), so
    the Model page gives every widget the value it shows as its default, and its callbacks act only on a real
    move."""
    at = go(tiny_settings(new_app()), "model")
    shown = {k: getattr(at, kind)(key=k).value for k, kind in MODEL_WIDGETS.items()}
    assert shown["backbone"] == "mobilenet_v2" and shown["mode"] == "frozen" and shown["epochs"] == 2
    _rerun_with(at, _lost_state(at))  # on the Model page
    assert {k: getattr(at, kind)(key=k).value for k, kind in MODEL_WIDGETS.items()} == shown

    lost = _lost_state(at)
    go(at, "train")
    assert "Feature extraction" in texts(at) and "Fine-tune" not in texts(at), texts(at)[:600]
    at.button(key="start_run").click()
    _rerun_with(at, lost)  # the click on Start arrives with the Model page's widgets
    poll(at, lambda a: "took" in texts(a))
    assert "digits · mobilenet_v2 · Feature extraction" in shown_run_header(at), shown_run_header(at)

    # a recipe picked and the freeze depth then moved by hand: a replayed recipe picker must not undo the move
    go(at, "model")
    at.selectbox(key="recipe").set_value("gradual").run()
    assert at.radio(key="mode").value == "finetune" and at.slider(key="freeze_depth").value == 0
    at.slider(key="freeze_depth").set_value(3).run()
    lost = _lost_state(at)
    _rerun_with(go(at, "train"), lost)
    go(at, "model")
    assert at.slider(key="freeze_depth").value == 3 and at.selectbox(key="recipe").value == "gradual"
    assert at.selectbox(key="backbone").value == "mobilenet_v2" and at.number_input(key="epochs").value == 2
