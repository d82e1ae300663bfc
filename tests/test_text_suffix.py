"""Text fine-tuning at depth k: the hidden states entering the first trainable layer are cached with their attention
mask, and every step runs only the layers above. Real tiny encoders (random init) and the bundled MiniLM."""

import pytest
import torch

from tl_core import randomness
from tl_core.config import TrainConfig
from tl_core.engine import training
from tl_core.engine.plan import plan_run
from tl_core.events import CancelToken, Message, RunFinished, RunStarted, StepProgress
from tl_core.models import backbones

CUT = ["all-MiniLM-L6-v2", "bert-base-uncased", "distilbert-base-uncased", "roberta-base", "gpt2", "t5-small"]
SENTENCES = ["a great film, truly moving", "dull", "not bad at all, though far too long", "fine"]
RUN = dict(data="builtin:sentiment", backbone="all-MiniLM-L6-v2", mode="finetune", freeze_depth=4, epochs=2, budget="fixed",
           labels_per_class=8, val_per_class=5, test_per_class=5, max_length=16, batch_size=8)


def _model(name):
    bundled = name == "all-MiniLM-L6-v2"
    return backbones.build(name, n_classes=3, pretrained=bundled, tiny=not bundled)


def _tokens(model):
    batch = model.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # padding present: the mask must matter
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _reseed(model, seed=1):
    """Restart every dropout draw: the run's own generators (tl_core.randomness) and torch's default one
    (attention-probability dropout)."""
    for module in model.modules():
        if isinstance(module, randomness.SeededDropout):
            module._gens._by_device.clear()
    torch.manual_seed(seed)


@pytest.mark.parametrize("name", CUT)
def test_boundary_then_suffix_equals_the_whole_encoder(name):
    model = _model(name).eval()
    x = _tokens(model)
    with torch.no_grad():
        whole = model(x)
        for depth in range(1, model.n_blocks):
            assert model.caches_at(depth)
            h = model.boundary(x, depth)
            assert set(h) == {"hidden", "attention_mask"} and h["hidden"].shape[:2] == x["input_ids"].shape
            assert torch.allclose(model.suffix(h, depth), whole, atol=1e-5), f"{name} at depth {depth}"
        # The cached mask really is used: calling the top layers as if there were no padding changes the result.
        unpadded = dict(h, attention_mask=torch.ones_like(h["attention_mask"]))
        assert not torch.allclose(model.pooled(unpadded, depth), model.pooled(h, depth), atol=1e-4)


@pytest.mark.parametrize("name,depth", [("all-MiniLM-L6-v2", 4), ("distilbert-base-uncased", 2), ("gpt2", 2),
                                        ("roberta-base", 1), ("t5-small", 1)])
def test_dropout_above_the_cut_applies_in_training_as_in_the_whole_model(name, depth):
    """Same dropout draws, same logits: the trainable layers drop exactly what they drop in the full forward
    (and the frozen bottom, embedding dropout included, draws nothing in either)."""
    model = _model(name)
    model.freeze(depth)
    x = _tokens(model)
    model.eval()
    with torch.no_grad():
        h = model.boundary(x, depth)
    model.train()
    _reseed(model)
    whole = model(x)
    _reseed(model)
    ours = model.suffix(h, depth)
    # The same draws give the same logits up to float rounding (a cut can take another attention kernel path); a
    # different draw moves them by dropout's own size, orders of magnitude more.
    torch.testing.assert_close(ours, whole, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(model.suffix(h, depth), ours, atol=1e-3)  # dropout is on: the next draw differs


def test_xlnet_runs_whole_and_the_plan_says_so():
    model = _model("xlnet-base-cased")
    assert not model.caches_at(1) and model.caches_at(model.n_blocks)
    with pytest.raises(ValueError, match="runs its encoder whole"):
        model.boundary(_tokens(model), 1)
    xlnet, minilm = backbones.describe("xlnet-base-cased"), backbones.describe("all-MiniLM-L6-v2")
    assert not xlnet["block_cache"] and minilm["block_cache"] and backbones.describe("resnet18")["block_cache"]
    assert plan_run("finetune", 4, xlnet, 3).cache_boundary is None
    assert plan_run("frozen", None, xlnet, 3).cache_boundary == "pooled features"
    assert plan_run("finetune", 4, minilm, 3).cache_boundary == "after layer2"


def test_depth_k_text_fine_tune_trains_only_the_cached_suffix():
    prep = training.prepare(TrainConfig(**RUN))
    model = prep.model
    assert training._cache_fits(prep)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = model.net.encoder.layer
    calls = {"frozen": 0, "trainable": 0}
    layers[2].register_forward_hook(lambda *_: calls.__setitem__("frozen", calls["frozen"] + 1))
    layers[3].register_forward_hook(lambda *_: calls.__setitem__("trainable", calls["trainable"] + 1))
    during_steps = []

    def watch(event):
        if isinstance(event, StepProgress):
            during_steps.append(dict(calls))

    events = []
    result = training.fit(prep, callbacks=[events.append, watch])
    assert result.status == "completed"
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.cached_boundary == result.summary["cached_boundary"] == "after layer2"
    assert any(isinstance(e, Message) and "Caching activations (after layer2)" in e.text for e in events)
    # Across every optimizer step the frozen layers never ran again; the layer above the cut ran every step.
    assert during_steps[0]["frozen"] == during_steps[-1]["frozen"] > 0
    assert all(b["trainable"] > a["trainable"] for a, b in zip(during_steps, during_steps[1:]))
    after = model.state_dict()
    frozen_prefixes = ("net.embeddings.", "net.encoder.layer.0.", "net.encoder.layer.1.", "net.encoder.layer.2.")
    for key, value in after.items():
        if key.startswith(frozen_prefixes):
            assert torch.equal(value, before[key]), f"frozen {key} changed"
    moved = [k for k in after if k.startswith(("net.encoder.layer.3.", "net.encoder.layer.5.", "head."))
             and not torch.equal(after[k], before[k])]
    assert any(k.startswith("head.") for k in moved) and any(k.startswith("net.encoder.layer.5.") for k in moved)
    # The reported accuracy is what the trained suffix predicts: the confusion matrix's diagonal over all test items.
    matrix = torch.tensor(result.summary["confusion_matrix"])
    assert matrix.sum() == result.summary["n_test"] == 15
    assert result.summary["test_acc"] == pytest.approx(float(matrix.trace()) / 15)
    # ...of the epoch the selection kept: the best point of the validation curve.
    best = max(result.history, key=lambda h: (h["val_acc"], -h["val_loss"]))
    assert (result.summary["selected_epoch"], result.summary["best_val_acc"]) == (best["epoch"], best["val_acc"])


def test_cancel_stops_a_cached_text_fine_tune_mid_epoch():
    token, seen = CancelToken(), []

    def cancel_on_second_step(event):
        seen.append(event)
        if isinstance(event, StepProgress) and event.global_step == 2:
            token.cancel()

    result = training.train(TrainConfig(**RUN), callbacks=[cancel_on_second_step], cancel=token)
    assert result.status == "cancelled"
    assert next(e for e in seen if isinstance(e, RunStarted)).cached_boundary == "after layer2"
    assert sum(isinstance(e, StepProgress) for e in seen) == 2
    assert isinstance(seen[-1], RunFinished) and seen[-1].status == "cancelled"
