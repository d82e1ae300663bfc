"""The SQLite run store: a real file, WAL, per-owner views, deletion with artifacts, crash recovery."""

import json
import sqlite3

from tl_core.runs.store import RunStore

CONFIG = {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"}


def test_round_trip_and_filters(store):
    store.create_run("r1", CONFIG, owner="alice", device="cpu")
    store.add_epoch("r1", {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4, "seconds": 0.2})
    store.finish("r1", "completed", {"best_val_acc": 0.4})
    store.create_run("r2", {**CONFIG, "data": "builtin:animals"}, owner="bob")
    run = store.get_run("r1")
    assert run["status"] == "completed" and run["summary"]["best_val_acc"] == 0.4
    assert run["history"][0]["val_acc"] == 0.4 and run["config"] == CONFIG
    assert [r["run_id"] for r in store.list_runs(owner="alice")] == ["r1"]
    assert [r["run_id"] for r in store.list_runs(dataset="builtin:animals")] == ["r2"]
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_only_the_owner_deletes(store):
    store.create_run("r1", CONFIG, owner="alice")
    (store.artifacts_dir("r1") / "model.safetensors").write_bytes(b"x")
    assert not store.delete_run("r1", owner="bob")
    assert store.delete_run("r1", owner="alice")
    assert store.get_run("r1") is None and not store.artifacts_dir("r1", create=False).exists()


def test_runs_of_a_dead_process_are_marked_failed(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    store.create_run("r1", CONFIG, owner="a")
    with sqlite3.connect(path) as db:  # as if written by a process that has since died
        db.execute("UPDATE runs SET summary=? WHERE run_id='r1'", (json.dumps({"pid": 2**22 + 12345}),))
    assert RunStore(path).get_run("r1")["status"] == "failed"


def test_folder_path_and_env_default(tmp_path, monkeypatch):
    assert RunStore(tmp_path / "somewhere").path == tmp_path / "somewhere" / "runs.sqlite"
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    assert RunStore().path == tmp_path / "data" / "runs.sqlite"


def test_a_run_keeps_the_plan_it_trained(tmp_path):
    from tl_core import plan_for
    from tl_core.config import TrainConfig
    from tl_core.engine import training
    from tl_core.inputs import data
    from tl_core.engine.plan import depth_label_of, plan_of

    config = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", mode="finetune", freeze_depth=5, epochs=1,
                         budget="fixed", labels_per_class=4, val_per_class=2, test_per_class=2, image_size=32)
    ds = data.load_dataset("builtin:digits")
    plan = plan_for(config, ds)
    store = RunStore(tmp_path)
    result = training.train(config, dataset=ds, store=store, plan=plan)
    run = store.get_run(result.run_id)
    assert plan_of(run) == plan and run["plan"] == plan.to_dict()
    assert depth_label_of(run) == "k=5"


def test_a_store_made_before_runs_kept_plans_and_times_still_loads(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as db:  # the columns a store had before the plan
        db.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, owner TEXT, created_at TEXT, finished_at TEXT, status TEXT,"
            " device TEXT, dataset TEXT, backbone TEXT, mode TEXT, config TEXT, summary TEXT, error TEXT);")
        db.execute("INSERT INTO runs VALUES ('old1','t','2026-01-01','2026-01-01','completed','cpu','builtin:digits',"
                   "'mobilenet_v2','finetune',?,'{\"freeze_depth\": 7}',NULL)",
                   (json.dumps({**CONFIG, "mode": "finetune", "freeze_depth": 7}),))
    from tl_core.engine.plan import depth_label_of

    store = RunStore(path)
    old = store.get_run("old1")
    assert old["plan"] is None and depth_label_of(old) == "k=7"
    assert old["times"] == {"submitted": None, "started": None, "first_epoch": None, "finished": None}
    store.create_run("new1", CONFIG, owner="t", plan={"mode": "frozen"})
    assert store.get_run("new1")["plan"] == {"mode": "frozen"} and store.get_run("new1")["times"]["started"]


def test_a_run_keeps_the_moments_of_its_way_through_the_server(store):
    import time

    before = time.time()
    store.create_run("r1", CONFIG, owner="a")
    store.mark_submitted("r1", before - 5.0)
    assert store.get_run("r1")["times"]["first_epoch"] is None
    row = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4, "seconds": 0.2}
    store.add_epoch("r1", row)
    first = store.get_run("r1")["times"]["first_epoch"]
    store.add_epoch("r1", {**row, "epoch": 2})  # only the first epoch stamps it
    store.finish("r1", "completed", {})
    times = store.get_run("r1")["times"]
    assert times["first_epoch"] == first
    assert times["submitted"] == before - 5.0 <= before <= times["started"] <= first <= times["finished"] <= time.time()
    assert store.list_runs(owner="a")[0]["times"] == times

