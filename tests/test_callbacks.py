"""A callback cannot take a run down, and a store row never stays "running"."""

from tl_core.config import TrainConfig
from tl_core.engine import training
from tl_core.events import EpochMetrics, Message, RunFinished
from tl_core.runs import artifacts
from tl_core.runs.store import RunStore

TINY = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", mode="finetune", freeze_depth=7, image_size=32, budget="fixed",
                   epochs=2, labels_per_class=5, val_per_class=5, test_per_class=5)


def test_a_callback_that_raises_is_reported_and_removed_and_the_run_completes():
    broken_calls, seen = [], []

    def broken_chart(event):
        broken_calls.append(event)
        if isinstance(event, EpochMetrics):
            raise RuntimeError("the chart broke")

    result = training.train(TrainConfig(**TINY.to_dict()), callbacks=[broken_chart, seen.append])
    assert result.status == "completed"
    assert sum(isinstance(e, EpochMetrics) for e in broken_calls) == 1  # removed after it raised
    notes = [e.text for e in seen if isinstance(e, Message) and e.level == "warning"]
    assert any("broken_chart" in t and "RuntimeError: the chart broke" in t for t in notes), notes
    assert isinstance(seen[-1], RunFinished) and seen[-1].status == "completed"
    assert sum(isinstance(e, EpochMetrics) for e in seen) == 2


def test_a_model_that_cannot_be_saved_leaves_a_failed_row_not_a_running_one(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts, "save_artifacts", disk_full)
    store = RunStore(tmp_path / "runs.sqlite")
    result = training.train(TrainConfig(**TINY.to_dict()), store=store)
    row = store.get_run(result.run_id)
    assert row["status"] == "failed"
    assert "could not be saved" in row["error"] and "No space left" in row["error"]
