"""A small class on one server: four students press Start at the same instant (bench/bench_classroom.py, small).

Four browser contexts, each on the Train page of its own session URL, click Start within milliseconds of each
other; the server's two worker processes train two runs while the others queue. Every run must complete (none
lost), every page must show only its own run while it trains and at the end (the run store's owner of each run id
a page showed), and with the shared activation cache the frozen backbone runs over the images once for the class.

The benchmark runs as its own process, as anyone runs it (`--json`: one line per class), so the test reads the
figures the benchmark reports and never imports it.
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


def run_bench(chromium: str) -> dict:
    """bench/bench_classroom.py for one class of STUDENTS with the cache on; its JSON line for that class."""
    cmd = [sys.executable, "bench/bench_classroom.py", "--sessions", str(STUDENTS), "--json", "--warm-s", "0",
           "--timeout", str(CLASS_TIMEOUT_S), *SETTINGS]
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

    assert out["sessions"] == STUDENTS and out["cache"] is True, out
    assert details["clicks"] == STUDENTS
    assert details["click_spread_s"] < 2, details
    assert out["runs_submitted"] == STUDENTS, out
    assert out["runs_completed"] == STUDENTS and out["runs_lost"] == 0, out
    assert details["runs_failed"] == 0 and details["duplicate_runs"] == 0, out
    assert out["cross_talk"] == 0, out
    assert details["pages_showing_own_run"] == STUDENTS, out
    assert details["runs_queued"] >= STUDENTS - details["max_concurrent"], out  # two slots: the rest waited
    assert details["first_points"] == STUDENTS and out["last_done_s"] is not None, out
    assert details["first_points_seen_live"] >= 1, out  # a queued tiny run may show its curve with its result
    assert out["peak_rss_mb"]["server"] > 0 and out["peak_rss_mb"]["workers"] > 0, out
    assert out["backbone_forward_passes"] == 1, out  # 4 identical frozen runs, one pass over the images
