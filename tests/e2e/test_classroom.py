"""A small class on one server: four students press Start at the same instant (bench/bench_classroom.py, small).

Four browser contexts, each on the Train page of its own session URL, click Start within milliseconds of each
other; the server's two worker processes train two runs while the others queue. Every run must complete (none
lost), every page must show only its own run while it trains and at the end (the run store's owner of each run id
a page showed), and with the shared activation cache the frozen backbone runs over the images once for the class.

A second class holds one browser and two light sessions (bench/light_client.py: a Streamlit session over the
server's websocket protocol, no browser): each light session must see its own run finished, none another's.

The benchmark runs as its own process, as anyone runs it (`--json`: one line per class), so the test reads the
figures the benchmark reports and never imports it; the light client is the benchmark's, driven the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STUDENTS = 4
#: Feature extraction (the default mode) on a tiny slice of digits: the class, not the training, is under test.
SETTINGS = ["--data", "builtin:digits", "--labels-per-class", "5", "--val-per-class", "5", "--test-per-class", "10",
            "--image-size", "32"]
CLASS_TIMEOUT_S = 600


def run_bench(chromium: str, students: int = STUDENTS, *extra: str) -> dict:
    """bench/bench_classroom.py for one class of `students` with the cache on; its JSON line for that class."""
    cmd = [sys.executable, "bench/bench_classroom.py", "--sessions", str(students), "--json", "--warm-s", "0",
           "--timeout", str(CLASS_TIMEOUT_S), *SETTINGS, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=CLASS_TIMEOUT_S + 420,
                          env=dict(os.environ, TL_CHROMIUM=chromium))
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the benchmark (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return lines[0]


def test_class_of_four_trains_at_once(chromium, capsys):
    out = run_bench(chromium)
    with capsys.disabled():
        print(f"\n[e2e] class of {STUDENTS}: {out}")
    details = out["details"]

    assert out["sessions"] == STUDENTS and out["browsers"] == STUDENTS and out["cache"] is True, out
    assert details["clicks"] == STUDENTS
    assert details["click_spread_s"] < 2, details
    assert out["runs_submitted"] == STUDENTS, out
    assert out["runs_completed"] == STUDENTS and out["runs_lost"] == 0, out
    assert details["runs_failed"] == 0 and details["duplicate_runs"] == 0, out
    assert out["cross_talk"] == 0 and out["stuck_pages"] == 0 and details["pages_without_result"] == [], out
    assert details["pages_showing_own_run"] == STUDENTS, out
    assert details["runs_queued"] >= STUDENTS - details["max_concurrent"], out  # two slots: the rest waited
    assert details["first_points"] == STUDENTS and out["last_done_s"] is not None, out
    assert details["first_points_seen_live"] >= 1, out  # a queued tiny run may show its curve with its result
    assert out["peak_rss_mb"]["server"] > 0 and out["peak_rss_mb"]["workers"] > 0, out
    assert out["backbone_forward_passes"] == 1, out  # 4 identical frozen runs, one pass over the images
    # the server's own records: every run's way through it, in order, and its first point before any page's
    server = out["server_s"]
    assert out["server_first_point_s"] == server["first_epoch"], out
    assert 0 <= server["submitted"]["median"] <= server["started"]["median"] <= server["first_epoch"]["median"] \
        <= server["finished"]["median"], out
    assert details["server_first_point_before_page"] == STUDENTS, out
    assert out["server_last_finished_s"] <= out["last_done_s"], out


def test_light_sessions_beside_a_browser_each_see_their_own_finished_run(chromium, capsys):
    out = run_bench(chromium, 3, "--light", "--browsers", "1")
    with capsys.disabled():
        print(f"\n[e2e] 1 browser + 2 light sessions: {out}")
    details, light = out["details"], out["details"]["light"]

    assert (out["sessions"], out["browsers"], out["light_sessions"]) == (3, 1, 2), out
    assert details["clicks"] == 3 and details["click_spread_s"] < 2, out
    assert out["runs_submitted"] == 3 and out["runs_completed"] == 3 and out["runs_lost"] == 0, out
    assert out["cross_talk"] == 0 and out["stuck_pages"] == 0 and details["duplicate_runs"] == 0, out
    assert light["sessions"] == 2 and light["done"] == 2 and light["showing_own_run"] == 2, out  # its own, finished
    assert details["browser"]["done"] == 1 and details["browser"]["showing_own_run"] == 1, out
    assert light["messages"] > 0 and out["light_first_point_s"]["median"] is not None, out
    assert details["server_first_point_before_page"] == 3, out
    assert out["backbone_forward_passes"] == 1, out
