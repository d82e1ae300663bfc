"""Inside a run: features before and after training, their separation, per-item predictions, confusion cells and
the most confident mistakes. The numeric parts on hand-made data; the run parts on real runs (real torch, real
store) and through the CLI (`embed`, `mistakes`)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix

from tl_core.config import TrainConfig
from tl_core.engine import embedding, mistakes
from tl_core.engine.training import train
from tl_core.errors import UserError
from tl_core.runs import inspection
from tl_core.runs.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data="builtin:digits", backbone="mobilenet_v2", epochs=2, budget="fixed", labels_per_class=8, val_per_class=5,
            test_per_class=5, image_size=32)


# ---- the numbers, on hand-made features -------------------------------------------------------------------------
def _clusters(n_per_class=12, classes=3, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:classes] * 5
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centres])
    return x, np.repeat(np.arange(classes), n_per_class)


def test_separation_tells_clusters_from_noise():
    x, y = _clusters()
    tight = embedding.separation(x, y)
    assert tight.knn_acc == 1.0 and tight.silhouette > 0.9
    assert tight.folds == 5 and tight.repeats == 3 and len(tight.knn_folds) == 15
    noise = embedding.separation(np.random.default_rng(1).normal(size=x.shape), y)
    assert noise.knn_acc < 0.7 and abs(noise.silhouette) < 0.1
    gain = embedding.change(noise, tight)
    assert gain.knn_gain > 0.3 and gain.direction == "more" and embedding.change(tight, noise).direction == "less"
    same = embedding.change(tight, embedding.separation(x, y))
    assert same.knn_gain == 0.0 and same.direction == "same"  # the same folds: identical spaces score identically


def test_separation_with_too_few_items_per_class_says_so():
    x, y = _clusters(n_per_class=1)
    sep = embedding.separation(x, y)
    assert sep.knn_acc is None and sep.folds == 0 and embedding.change(sep, sep).direction == "same"
    x2, y2 = _clusters(n_per_class=2)
    assert embedding.separation(x2, y2).folds == 2  # folds shrink to the smallest class


def test_projections_are_seeded_maps_of_every_item():
    x, y = _clusters()
    pca = embedding.project(x, "pca")
    assert pca.xy.shape == (36, 2) and 0 < pca.explained <= 1
    tsne = embedding.project(x, "tsne", seed=3)
    assert tsne.xy.shape == (36, 2) and tsne.explained is None
    assert np.array_equal(tsne.xy, embedding.project(x, "tsne", seed=3).xy)
    with pytest.raises(UserError, match="unknown method 'umap'"):
        embedding.project(x, "umap")
    with pytest.raises(UserError, match="at least 4 items"):
        embedding.project(x[:3], "pca")


def test_mistakes_are_wrong_and_sorted_by_confidence():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.9, 0.05, 0.05],   # right
                      [0.2, 0.7, 0.1],     # wrong: dog, 0.7
                      [0.6, 0.3, 0.1],     # wrong: cat, 0.6
                      [0.1, 0.8, 0.1],     # right
                      [0.05, 0.9, 0.05],   # wrong: dog, 0.9
                      [0.3, 0.3, 0.4]])    # right
    wrong = mistakes.confident_mistakes(y, probs)
    assert list(wrong) == [4, 1, 2]
    assert all(y[i] != probs[i].argmax() for i in wrong)
    assert list(mistakes.confident_mistakes(y, probs, limit=2)) == [4, 1]
    assert mistakes.confusion(y, probs, 3) == confusion_matrix(y, probs.argmax(1), labels=[0, 1, 2]).tolist()
    assert list(mistakes.cell_items(y, probs, 0, 1)) == [1]
    assert list(mistakes.cell_items(y, probs, 2, 1)) == [4]
    assert list(mistakes.cell_items(y, probs, 1, 0)) == [2]
    assert list(mistakes.cell_items(y, probs, 1, 2)) == []
    tie = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert list(mistakes.confident_mistakes(np.array([1, 1]), tie)) == [0, 1]  # ties: the earlier item first


# ---- a real run ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small digits fine-tune and a frozen run in one store (shared by the tests below and the CLI tests)."""
    store = RunStore(tmp_path_factory.mktemp("inspect") / "runs.sqlite")
    tuned = train(TrainConfig(mode="finetune", freeze_depth=6, **TINY), store=store)
    frozen = train(TrainConfig(mode="frozen", **TINY), store=store)
    return store, tuned.run_id, frozen.run_id


def test_predictions_rebuild_the_runs_own_test_results(tiny):
    store, tuned, _ = tiny
    run = store.get_run(tuned)
    preds = inspection.predictions(inspection.open_run(store, tuned, split="test"))
    assert preds.probs.shape == (50, 10) and np.allclose(preds.probs.sum(1), 1, atol=1e-5)
    # the same items and the same weights as the run's own evaluation: the same confusion matrix and accuracy
    assert preds.confusion_matrix() == run["summary"]["confusion_matrix"]
    assert preds.accuracy == pytest.approx(run["summary"]["test_acc"])
    wrong = preds.mistakes()
    assert len(wrong) == round(50 * (1 - preds.accuracy))
    conf = preds.probs.max(1)[wrong]
    assert all(conf[:-1] >= conf[1:]) and all(preds.labels[wrong] != preds.predicted[wrong])
    cm = preds.confusion_matrix()
    for t in range(10):  # every cell returns exactly the items with that true and predicted class
        for p in range(10):
            cell = preds.cell(t, p)
            assert len(cell) == cm[t][p]
            assert all(preds.labels[cell] == t) and all(preds.predicted[cell] == p)
    assert preds.cell("3", "3").tolist() == preds.cell(3, 3).tolist()  # by name or index
    row = preds.row(int(wrong[0]))
    assert row["true"] != row["predicted"] and row["confidence"] == pytest.approx(conf[0])
    assert row["top"][0]["class"] == row["predicted"]


def test_embeddings_compare_the_start_with_the_trained_features(tiny):
    store, tuned, frozen = tiny
    items = inspection.open_run(store, tuned)
    emb = inspection.embeddings(items)
    assert emb.split == "val" and emb.before_features.shape == emb.after_features.shape == (50, 1280)
    assert not emb.unchanged and emb.pretrained_start and emb.mode == "finetune"
    assert emb.before.knn_acc is not None and emb.after.knn_acc is not None
    before, after = emb.maps("pca")
    assert before.xy.shape == after.xy.shape == (50, 2)
    out = emb.to_dict((before, after))
    assert len(out["items"]) == 50 and out["items"][0]["index"] == int(items.indices[0])
    assert out["direction"] in ("more", "less", "same")
    json.dumps(out)  # serialisable as it is
    # a frozen run's backbone did not move: the same features, the same numbers
    still = inspection.embeddings(inspection.open_run(store, frozen))
    assert still.unchanged and still.before.knn_folds == still.after.knn_folds
    assert still.change.direction == "same"


def test_bad_runs_say_why_they_cannot_be_inspected(tiny, tmp_path):
    store, tuned, _ = tiny
    with pytest.raises(inspection.InspectError, match="unknown run 'nope'"):
        inspection.open_run(store, "nope")
    store.create_run("cancelled1", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"},
                     owner="t")
    store.finish("cancelled1", "cancelled", {})
    with pytest.raises(inspection.InspectError, match="was cancelled before it finished"):
        inspection.open_run(store, "cancelled1")
    store.create_run("nomodel1", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"}, owner="t")
    store.finish("nomodel1", "completed", {"classes": [str(d) for d in range(10)]})
    with pytest.raises(inspection.InspectError, match="has no saved model"):
        inspection.open_run(store, "nomodel1")
    record = dict(store.get_run(tuned), config={**store.get_run(tuned)["config"], "data": "upload:mine.zip@abcd1234"})
    with pytest.raises(inspection.InspectError, match=r"trained on an upload \(mine.zip\)"):
        inspection.run_dataset(record)
    other = tmp_path / "other.zip"
    other.write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(inspection.InspectError, match="not the file run"):
        inspection.run_dataset(record, other)
    with pytest.raises(inspection.InspectError, match="unknown split"):
        inspection.open_run(store, tuned, split="train")


@pytest.mark.parametrize("mode", ["scratch", "finetune"])
def test_the_start_model_is_the_very_network_the_run_started_from(mode):
    """'Before training' is the run's own start: the seeded random init of a from-scratch run, the pretrained
    weights of a fine-tune, with the same initial head."""
    from tl_core.engine.training import prepare

    cfg = TrainConfig(mode=mode, seed=3, **{k: v for k, v in TINY.items() if k != "epochs"})
    started = prepare(cfg).model.state_dict()
    rebuilt = inspection.start_model(cfg, 10).state_dict()
    assert started.keys() == rebuilt.keys()
    assert all(torch.equal(started[k].cpu(), rebuilt[k]) for k in started)
    other_seed = inspection.start_model(TrainConfig(**{**cfg.to_dict(), "seed": 4}), 10).state_dict()
    differs = [k for k in started if not torch.equal(started[k].cpu(), other_seed[k])]
    assert differs and (mode == "finetune") == all("classifier" in k for k in differs)  # pretrained: only the head


def test_a_damaged_model_is_one_line(tiny, tmp_path):
    import shutil

    store, tuned, _ = tiny
    copy = RunStore(tmp_path / "runs.sqlite")
    run = store.get_run(tuned)
    copy.create_run(tuned, run["config"], owner="t")
    copy.finish(tuned, "completed", run["summary"])
    folder = copy.artifacts_dir(tuned)
    shutil.copytree(store.artifacts_dir(tuned, create=False), folder, dirs_exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(inspection.InspectError, match=f"the saved model of run {tuned} cannot be read"):
        inspection.open_run(copy, tuned)


@pytest.mark.slow
def test_fine_tuning_separates_animals_better_than_the_pretrained_features(tmp_path):
    """The lesson of the maps on real bundled ImageNet weights: on animal silhouettes, fine-tuning the last blocks
    brings each class's validation items closer together (k-NN accuracy in the full feature space)."""
    store = RunStore(tmp_path / "runs.sqlite")
    run = train(TrainConfig(data="builtin:animals", backbone="mobilenet_v2", mode="finetune", freeze_depth=6,
                            epochs=10, budget="fixed", labels_per_class=10, val_per_class=10, test_per_class=5, image_size=64),
                store=store)
    emb = inspection.embeddings(inspection.open_run(store, run.run_id))
    assert not run.summary["health"]
    assert emb.after.knn_acc >= emb.before.knn_acc, (emb.before, emb.after)


# ---- the CLI ---------------------------------------------------------------------------------------------------
def cli(*args, store: RunStore):
    return subprocess.run([sys.executable, "-m", "tl_core", *args, "--store", str(store.path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_embed_json(tiny):
    store, tuned, _ = tiny
    out = cli("embed", "--run", tuned, "--method", "tsne", "--json", store=store)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one object
    assert result["run_id"] == tuned and result["method"] == "tsne" and result["split"] == "val"
    assert {"knn_acc", "knn_std", "silhouette", "k", "folds"} <= set(result["before"]) <= set(result["after"])
    assert len(result["items"]) == 50 and {"index", "true", "predicted", "before", "after"} <= set(result["items"][0])
    assert result["reading"].startswith("Classes separate")
    human = cli("embed", "--run", tuned, store=store)
    assert human.returncode == 0 and "Pretrained backbone (before training)" in human.stdout
    assert "After fine-tuning" in human.stdout and "k-NN accuracy" in human.stdout


def test_cli_mistakes_json_and_one_cell(tiny):
    store, tuned, _ = tiny
    out = cli("mistakes", "--run", tuned, "--limit", "0", "--json", store=store)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["split"] == "test" and result["n_items"] == 50
    assert result["confusion_matrix"] == store.get_run(tuned)["summary"]["confusion_matrix"]
    rows = result["items"]
    assert len(rows) == result["n_mistakes"] and all(r["true"] != r["predicted"] for r in rows)
    assert [r["confidence"] for r in rows] == sorted((r["confidence"] for r in rows), reverse=True)
    assert all(len(r["top"]) == 10 for r in rows)
    t, p = next((t, p) for t, row in enumerate(result["confusion_matrix"]) for p, n in enumerate(row) if n and t != p)
    cell = json.loads(cli("mistakes", "--run", tuned, "--true", str(t), "--predicted", str(p), "--limit", "0",
                          "--json", store=store).stdout)
    assert cell["cell"] == {"true": str(t), "predicted": str(p)}
    assert len(cell["items"]) == result["confusion_matrix"][t][p]
    assert all(r["true"] == str(t) and r["predicted"] == str(p) for r in cell["items"])


@pytest.mark.parametrize("args, message", [
    (["embed", "--run", "nope"], "unknown run 'nope'"),
    (["mistakes", "--run", "cancelled2"], "was cancelled"),
    (["embed", "--run", "nomodel2"], "has no saved model"),
    (["mistakes", "--run", "{tuned}", "--true", "3"], "--true and --predicted go together"),
    (["mistakes", "--run", "{tuned}", "--true", "cat", "--predicted", "3"], "unknown class 'cat'"),
], ids=["unknown", "cancelled", "no-model", "half-cell", "unknown-class"])
def test_cli_bad_input_exits_2_with_one_line(tiny, args, message):
    store, tuned, _ = tiny
    if store.get_run("cancelled2") is None:
        store.create_run("cancelled2", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"},
                         owner="t")
        store.finish("cancelled2", "cancelled", {})
        store.create_run("nomodel2", {"data": "builtin:digits", "backbone": "mobilenet_v2", "mode": "frozen"},
                         owner="t")
        store.finish("nomodel2", "completed", {"classes": [str(d) for d in range(10)]})
    out = cli(*[a.format(tuned=tuned) for a in args], store=store)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert out.stdout == ""
