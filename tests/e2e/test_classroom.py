"""A small class on one server: four students press Start at the same instant (bench/bench_classroom.py, small).

Four browser contexts, each on the Train page of its own session URL, click Start within milliseconds of each
other; the server's two worker processes train two runs while the others queue. Every run must complete (none
lost), every page must show only its own run while it trains and at the end (the run store's owner of each run id
a page showed), and with the shared activation cache the frozen backbone runs over the images once for the class.
"""

from __future__ import annotations

import pytest

from bench.bench_classroom import Server, run_class

pytestmark = pytest.mark.e2e

STUDENTS = 4
#: Feature extraction (the default mode) on a tiny slice of digits: the class, not the training, is under test.
SETTINGS = {"data_source": "builtin:digits", "labels_per_class": 5, "val_per_class": 5, "test_per_class": 10,
            "image_size": 32}


@pytest.fixture
def class_server(tmp_path):
    """A server of its own (a fresh data folder, so the forward-pass counter counts this class only); it may take
    longer than the shared server's 90 s to come up on a machine that other classes are loading."""
    server = Server(tmp_path, tmp_path / "streamlit.log")
    try:
        server.wait_healthy(timeout=300)
        yield server, tmp_path
    finally:
        server.stop()


def test_class_of_four_trains_at_once(browser, class_server, capsys):
    server, data_dir = class_server
    res = run_class(browser, server, data_dir, STUDENTS, settings=SETTINGS, cache=True, timeout=600,
                    log=lambda *a: None)
    out = res.to_json()
    with capsys.disabled():
        print(f"\n[e2e] class of {STUDENTS}: {out}")

    assert out["details"]["clicks"] == STUDENTS
    assert out["details"]["click_spread_s"] < 2, out["details"]
    assert res.runs_submitted == STUDENTS, out
    assert res.runs_completed == STUDENTS and res.runs_lost == 0, out
    assert out["details"]["runs_failed"] == 0 and out["details"]["duplicate_runs"] == 0, out
    assert res.cross_talk == 0, out
    assert out["details"]["pages_showing_own_run"] == STUDENTS, out
    assert out["details"]["runs_queued"] >= STUDENTS - out["details"]["max_concurrent"], out  # two slots: the rest waited
    assert len(res.first_point) == STUDENTS and res.last_done_s is not None, out
    assert out["details"]["first_points_seen_live"] >= 1, out  # a queued tiny run may show its curve with its result
    assert out["peak_rss_mb"]["server"] > 0 and out["peak_rss_mb"]["workers"] > 0, out
    assert res.backbone_forward_passes == 1, out  # 4 identical frozen runs, one pass over the images
