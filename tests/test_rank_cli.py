"""`python -m tl_core rank`: JSON on stdout sorted by LogME, progress on stderr, one line and exit 2 on bad input,
and the rank correlation with the runs in the store."""

import json

import pytest
from scipy import stats

from tl_core.config import TrainConfig
from tl_core.runs.store import RunStore

from test_cli import assert_one_line_error, cli, cli_here, one_class_zip

BUNDLED_VISION = ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
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
    assert all({"name", "pretrained", "logme", "hscore", "seconds"} <= set(r) for r in rows)
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
], ids=["missing", "one-class", "no-weights", "wrong-family", "unknown-backbone", "negative-cap", "no-val", "size"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    fill = {"{one}": str(one_class_zip(tmp_path / "one.zip"))}
    assert_one_line_error(*cli_here(capsys, "rank", *[fill.get(a, a) for a in args], store=tmp_path), message)
