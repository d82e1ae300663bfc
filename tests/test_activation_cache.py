"""The shared activation cache with real runs: a second identical run reads the first one's activations and gets
the same result; anything that changes the activations misses; a damaged entry is recomputed; the size budget
evicts the least recently used; concurrent processes compute once; off means off."""

import hashlib
import multiprocessing
import os
from dataclasses import replace

import pytest
import torch

from tl_core.config import TrainConfig
from tl_core.engine import activation_cache, training
from tl_core.events import Message
from tl_core.models import backbones

TINY = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", mode="frozen", epochs=2, labels_per_class=4,
                   val_per_class=4, test_per_class=4, image_size=32)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Each test its own empty cache (and counter), on by default."""
    monkeypatch.setenv(activation_cache.ENV_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(activation_cache.ENV_SWITCH, raising=False)
    monkeypatch.delenv(activation_cache.ENV_MB, raising=False)
    return tmp_path / "cache"


def _run(config=TINY, **changes):
    events = []
    result = training.train(replace(config, **changes), callbacks=[events.append])
    return result, [e.text for e in events if isinstance(e, Message)]


def test_a_second_identical_run_is_a_hit_with_the_same_result():
    before = activation_cache.forward_passes()
    first, notes_first = _run()
    second, notes_second = _run()
    assert first.summary.activation_cache == "miss" and second.summary.activation_cache == "hit"
    assert activation_cache.forward_passes() == before + 1
    assert "Frozen activations computed and stored in the shared cache for the next run." in notes_first
    assert "Frozen activations from the shared cache: no forward pass." in notes_second
    assert second.summary.test_acc == first.summary.test_acc
    assert second.summary.ood_acc == first.summary.ood_acc
    assert second.summary.confusion_matrix == first.summary.confusion_matrix
    assert [h["val_acc"] for h in second.history] == [h["val_acc"] for h in first.history]
    assert len(activation_cache.entries()) == 5  # train, val, test, shifted test; the head's C search


def test_anything_that_changes_the_activations_misses():
    _run()
    for change in ({"image_size": 40},  # other pixels
                   {"labels_per_class": 5},  # other training items
                   {"mode": "finetune", "freeze_depth": 5, "budget": "fixed"},  # another boundary
                   {"recipe": "adabn"},  # the same weights, other BatchNorm statistics
                   {"ood_shift": "invert"}):  # another shifted copy of the test split
        passes = activation_cache.forward_passes()
        other, _ = _run(**change)
        assert other.summary.activation_cache == "miss", change
        assert activation_cache.forward_passes() == passes + 1, change


def test_the_weights_digest_sees_parameters_and_running_statistics_before_the_boundary_only():
    def build(seed):
        return backbones.build("mobilenet_v2", n_classes=3, pretrained=False, seed=seed, image_size=32)

    a, b = build(0), build(0)
    digest = activation_cache.weights_digest
    assert digest(a, 3) == digest(b, 3)
    assert digest(build(1), 3) != digest(a, 3)  # another random init
    bn = next(m for m in b._blocks[0].forward.modules() if isinstance(m, torch.nn.BatchNorm2d))
    saved = bn.running_mean.clone()
    bn.running_mean += 0.1  # what AdaBN changes: a buffer, not a parameter
    assert digest(b, 3) != digest(a, 3)
    bn.running_mean.copy_(saved)
    with torch.no_grad():  # after the boundary, and the head: not what depth 3 depends on
        next(b._blocks[5].forward.parameters()).add_(1.0)
    b.set_head(3, seed=7)
    assert digest(b, 3) == digest(a, 3)
    assert digest(b, 6) != digest(a, 6)


def test_a_damaged_entry_is_recomputed_not_used():
    first, _ = _run()
    for damage in ("garble", "truncate", "swap"):
        paths = sorted(activation_cache.entries(), key=lambda e: e[1])
        victim, other = paths[-1][0], paths[0][0]
        if damage == "garble":  # a valid file whose tensor no longer matches its digest
            entry = torch.load(victim, weights_only=True)
            entry["tensor"].view(-1)[0] += 1.0
            torch.save(entry, victim)
        elif damage == "truncate":
            victim.write_bytes(victim.read_bytes()[:1000])
        else:  # another entry's (valid) file under this name
            victim.write_bytes(other.read_bytes())
        passes = activation_cache.forward_passes()
        again, _ = _run()
        assert again.summary.activation_cache == "miss", damage
        assert activation_cache.forward_passes() == passes + 1, damage
        assert again.summary.test_acc == first.summary.test_acc
        assert len(activation_cache.entries()) == 5
        assert all(activation_cache.read(p.stem) is not None for p, _, _ in activation_cache.entries())


def test_least_recently_used_entries_go_first(monkeypatch):
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5)]
    assert activation_cache.write(keys[0], torch.zeros(1024))
    entry_bytes = activation_cache.entries()[0][1]
    monkeypatch.setenv(activation_cache.ENV_MB, str(3.5 * entry_bytes / 2**20))  # room for three entries
    for i, key in enumerate(keys[:3]):
        assert activation_cache.write(key, torch.full((1024,), float(i)))
        os.utime(activation_cache._path(key), (1000 + i, 1000 + i))
    assert activation_cache.read(keys[0]) is not None  # used: now the youngest
    activation_cache.write(keys[3], torch.zeros(1024))
    present = {p.stem for p, _, _ in activation_cache.entries()}
    assert present == {keys[0], keys[2], keys[3]}  # keys[1] was the least recently used
    assert not activation_cache.write(keys[4], torch.zeros(8 * 1024))  # bigger than the whole budget: not stored
    assert sum(size for _, size, _ in activation_cache.entries()) <= activation_cache.budget_bytes()


def _concurrent_worker(cache_dir: str, barrier, results) -> None:
    os.environ[activation_cache.ENV_DIR] = cache_dir
    torch.set_num_threads(1)
    prep = training.prepare(replace(TINY))
    shared = training._shared_activations(prep)
    barrier.wait()  # every process misses at the same moment
    parts = shared.first(["train", "val"])
    parts.update(test=shared.later("test"), ood=shared.later("ood"))
    digest = hashlib.sha256(b"".join(activation_cache._tensor_bytes(parts[p]) for p in sorted(parts))).hexdigest()
    results.put((shared.status, digest))


@pytest.mark.slow  # three fresh interpreters import torch
def test_concurrent_misses_in_separate_processes_compute_once(cache_dir):
    ctx = multiprocessing.get_context("spawn")
    n = 3
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_concurrent_worker, args=(str(cache_dir), barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(status for status, _ in got) == ["hit"] * (n - 1) + ["miss"]
    assert len({digest for _, digest in got}) == 1  # every process holds the same activations
    assert activation_cache.forward_passes() == 1


def test_off_means_every_run_computes_and_counts(monkeypatch):
    monkeypatch.setenv(activation_cache.ENV_SWITCH, "off")
    first, _ = _run()
    second, _ = _run()
    assert first.summary.activation_cache == second.summary.activation_cache == "off"
    assert activation_cache.forward_passes() == 2
    assert activation_cache.entries() == []
    assert second.summary.test_acc == first.summary.test_acc


def test_a_budget_of_zero_megabytes_is_off_too(monkeypatch):
    monkeypatch.setenv(activation_cache.ENV_MB, "0")
    computed = []
    run = activation_cache.RunActivations({"train": "ab" * 32}, lambda part: computed.append(part) or torch.ones(2))
    assert run.first(["train"])["train"].tolist() == [1.0, 1.0]
    assert run.status == "off" and computed == ["train"] and activation_cache.entries() == []
    assert activation_cache.forward_passes() == 1


def _refuse_searching(monkeypatch):
    import sklearn.linear_model

    def refuse(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegressionCV", refuse)


def test_the_heads_regularisation_search_runs_once_for_the_same_question(monkeypatch):
    from tl_core.engine import head_fit

    f, y = torch.randn(40, 16, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 4
    first = head_fit.choose_c(f, y, 4, seed=0)
    _refuse_searching(monkeypatch)
    assert head_fit.choose_c(f.clone(), y.clone(), 4, seed=0) == first  # the same bytes: the answer is read back
    for other in ({"y": y.roll(1)}, {"seed": 1}, {"f": f + 1e-3}, {"grid": head_fit.LP_FT_GRID}):
        args = {"f": f, "y": y, "seed": 0, **other}
        with pytest.raises(AssertionError, match="searched again"):
            head_fit.choose_c(args.pop("f"), args.pop("y"), 4, **args)


def test_the_warm_up_fills_exactly_what_the_demo_runs_look_up(monkeypatch):
    from tl_core.runs import demo

    configs = demo.classroom_demo_configs(data="builtin:digits", image_size=32, epochs=1, labels_per_class=4,
                                          val_per_class=4, test_per_class=4, seeds=1)
    assert demo.fill_demo_cache(configs) == {"miss": 2, "nothing cached": 1}  # frozen, depth-5 fine-tune; scratch
    passes = activation_cache.forward_passes()
    assert demo.fill_demo_cache(configs) == {"hit": 2, "nothing cached": 1}
    _refuse_searching(monkeypatch)  # nor a search for the head's regularisation: the warm-up made it too
    frozen = training.train(replace(configs[0]))
    assert frozen.status == "completed" and frozen.summary.activation_cache == "hit"
    assert activation_cache.forward_passes() == passes  # the student's first click ran no frozen forward pass


def test_a_deeper_boundary_starts_from_a_cached_shallower_one(monkeypatch):
    """A freeze-depth sweep: the fine-tune at depth 3 caches its boundary; the frozen run then runs only the blocks
    above it (and the pooling), and its features equal those computed from the pixels."""
    _run(mode="finetune", freeze_depth=3, epochs=1, budget="fixed")
    reuses = activation_cache.stats()["prefix_reuses"]
    frozen, _ = _run()
    assert frozen.summary.activation_cache == "miss"
    assert activation_cache.stats()["prefix_reuses"] == reuses + 4  # train, val, test, shifted test
    monkeypatch.setenv(activation_cache.ENV_SWITCH, "off")
    direct, _ = _run()
    assert direct.summary.test_acc == frozen.summary.test_acc and direct.summary.ood_acc == frozen.summary.ood_acc
    assert [h["val_loss"] for h in direct.history] == pytest.approx([h["val_loss"] for h in frozen.history], rel=1e-5)
