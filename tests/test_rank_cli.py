"""`python -m tl_core rank`: JSON on stdout sorted by LogME, progress on stderr, one line and exit 2 on bad input,
the rank correlation with the runs in the store, and `--check`: the missing feature-extraction runs trained, then
ImageNet top-1 against their test accuracy."""

import json

import pytest
from scipy import stats

from tl_core.config import TrainConfig
from tl_core.runs.store import RunStore

from test_cli import assert_one_line_error, cli, cli_here, one_class_zip

BUNDLED_VISION = ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TOP1 = {"mobilenet_v2": 71.878, "efficientnet_lite0": 75.1, "efficientnet_lite1": 76.7, "efficientnet_lite2": 77.6}
TINY = ["--data", "builtin:animals", "--image-size", "32", "--max-per-class", "10", "--val-per-class", "5",
        "--test-per-class", "10"]


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    store = tmp_path_factory.mktemp("rank_store")
    out = cli("rank", *TINY, "--include-random", "--json", store=store)
    return out, store


def test_rank_json_lists_every_available_backbone_sorted_by_logme(ranked):
    out, _ = ranked
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # the whole of stdout is one object
    rows = result["backbones"]
    assert all({"name", "pretrained", "logme", "hscore", "seconds", "imagenet_acc1"} <= set(r) for r in rows)
    for r in rows:  # as published with the weights; a random-init copy never saw ImageNet
        assert r["imagenet_acc1"] == (pytest.approx(TOP1[r["name"]]) if r["pretrained"] else None)
    assert {(r["name"], r["pretrained"]) for r in rows} == {(n, p) for n in BUNDLED_VISION for p in (True, False)}
    assert [r["logme"] for r in rows] == sorted((r["logme"] for r in rows), reverse=True)
    # at 32 px; Lite2 (native 260 px) scores below its random init there on LogME (measured: -0.239 against -0.191)
    for name in ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1"):
        pretrained, random = (next(r["logme"] for r in rows if r["name"] == name and r["pretrained"] is p)
                              for p in (True, False))
        assert pretrained > random, name
    assert result["items"] == 100 and "resnet18" in result["skipped"]
    assert result["agreement"]["n"] == 0 and result["agreement"]["logme"]["kendall_tau"] is None
    n = 2 * len(BUNDLED_VISION)
    assert f"[{n}/{n}]" in out.stderr and "LogME" in out.stderr  # progress went to stderr


def test_rank_reports_kendalls_tau_once_three_backbones_have_runs(ranked):
    _, folder = ranked
    rows = json.loads(ranked[0].stdout)["backbones"]
    store = RunStore(folder)
    accs = [0.8, 0.9, 0.5, 0.4]  # one swap at the top against the LogME order
    for i, (r, acc) in enumerate(zip(rows, accs)):  # finished frozen runs on the ranking's settings
        config = TrainConfig(data="builtin:animals", backbone=r["name"], mode="frozen", pretrained=r["pretrained"],
                             image_size=32, val_per_class=5, test_per_class=10).to_dict()
        store.create_run(f"run{i}", config, owner="cli")
        store.finish(f"run{i}", "completed", {"test_acc": acc, "health": []})
    out = cli("rank", *TINY, "--include-random", "--json", "--quiet", store=folder)
    assert out.returncode == 0 and "LogME" not in out.stderr, out.stderr  # --quiet: no progress
    check = json.loads(out.stdout)["agreement"]
    assert check["mode"] == "frozen" and check["n"] == 4
    tau = stats.kendalltau([r["logme"] for r in rows[:4]], accs).statistic  # the four rows with runs
    assert check["logme"]["kendall_tau"] == pytest.approx(tau)
    text = cli("rank", *TINY, "--include-random", "--quiet", store=folder)
    assert f"Kendall's tau, LogME vs frozen test accuracy over 4 backbones: {check['logme']['kendall_tau']:+.2f}" \
        in text.stdout
    assert "efficientnet_lite0 (random init)" in text.stdout and "0.900" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/data.zip"], "not found"),
    (["--data", "{one}"], "class"),
    (["--data", "builtin:animals", "--backbones", "resnet18"], "not on this machine"),
    (["--data", "builtin:animals", "--backbones", "all-MiniLM-L6-v2"], "text backbone"),
    (["--data", "builtin:animals", "--backbones", "resnet9000"], "unknown backbone 'resnet9000'"),
    (["--data", "builtin:animals", "--max-per-class", "-3"], "--max-per-class"),
    (["--data", "builtin:animals", "--val-per-class", "0"], "--val-per-class must be at least 1"),
    (["--data", "builtin:animals", "--image-size", "4"], "--image-size"),
    (["--data", "builtin:animals", "--seeds", "2"], "--seeds only applies with --check"),
    (["--data", "builtin:animals", "--check", "--seeds", "0"], "--seeds must be between 1 and"),
], ids=["missing", "one-class", "no-weights", "wrong-family", "unknown-backbone", "negative-cap", "no-val", "size",
        "seeds-without-check", "no-seeds"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    fill = {"{one}": str(one_class_zip(tmp_path / "one.zip"))}
    assert_one_line_error(*cli_here(capsys, "rank", *[fill.get(a, a) for a in args], store=tmp_path), message)


CHECK = ["--data", "builtin:animals", "--image-size", "32", "--labels-per-class", "5", "--max-per-class", "5",
         "--val-per-class", "5", "--test-per-class", "10", "--include-random", "--check", "--seeds", "1"]


def test_rank_check_trains_the_missing_frozen_runs_and_sets_imagenet_top1_against_them(tmp_path, capsys):
    code, out, err = cli_here(capsys, "rank", *CHECK, "--json", store=tmp_path)
    assert code == 0, err
    result = json.loads(out)
    assert (result["trained"], result["reused"], result["seeds"], result["mode"]) == (8, 0, [0], "frozen")
    assert "[8/8] feature extraction" in err
    runs = RunStore(tmp_path).list_runs(with_history=False)
    assert len(runs) == 8 and all(r["status"] == "completed" for r in runs)
    assert {(r["config"]["mode"], r["config"]["labels_per_class"], r["config"]["image_size"]) for r in runs} == \
        {("frozen", 5, 32)}
    by = {(r["config"]["backbone"], r["config"]["pretrained"]): r for r in runs}
    rows = result["backbones"]
    for row in rows:
        run = by[row["name"], row["pretrained"]]
        assert row["imagenet_acc1"] == (pytest.approx(TOP1[row["name"]]) if row["pretrained"] else None)
        if run["summary"]["health"]:  # not read as a result
            assert (row["frozen_test_mean"], row["n"], row["unhealthy"]) == (None, 0, 1)
        else:
            assert (row["frozen_test_mean"], row["frozen_test_std"], row["n"]) == (run["summary"]["test_acc"], None, 1)
    have = [r for r in rows if r["frozen_test_mean"] is not None]
    tau = stats.kendalltau([r["logme"] for r in have], [r["frozen_test_mean"] for r in have])
    assert result["kendall_tau"] == pytest.approx(tau.statistic) and result["kendall_n"] == len(have)
    top = [r for r in have if r["pretrained"]]
    assert result["pearson_n_top1"] == len(top) == 4  # every pretrained run is healthy on animals
    r = stats.pearsonr([x["imagenet_acc1"] for x in top], [x["frozen_test_mean"] for x in top])
    assert (result["pearson_r_top1"], result["pearson_p_top1"]) == (pytest.approx(r.statistic), pytest.approx(r.pvalue))
    assert result["sentence"].startswith("Four backbones from two families")

    code, out, err = cli_here(capsys, "rank", *CHECK, store=tmp_path)  # again: every run is reused
    assert code == 0, err
    assert "(0 runs trained, 8 reused" in out and "Pearson r (ImageNet top-1 vs frozen)" in out
    assert "mobilenet_v2 (random init)" in out and len(RunStore(tmp_path).list_runs()) == 8
