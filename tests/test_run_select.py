"""tl_core.runs.run_select: the runs pages open on, and the runs flagged as not results."""

from __future__ import annotations

from tl_core.runs import run_select

DIGITS = [str(d) for d in range(10)]


def run(rid, *, status="completed", data="builtin:digits", mode="frozen", best=0.8, owner="me", when="2026-01-01T10:00",
        classes=DIGITS, backbone="mobilenet_v2", labels=10, health=None, history=None):
    summary = {"best_val_acc": best, "classes": classes} if status == "completed" else {}
    if health is not None:
        summary["health"] = health
    return {"run_id": rid, "status": status, "owner": owner, "created_at": when, "summary": summary,
            "history": history or [],
            "config": {"data": data, "mode": mode, "backbone": backbone, "labels_per_class": labels,
                       "val_per_class": 20, "seed": 0}}


def test_at_chance_without_engine_findings():
    assert run_select.is_unhealthy(run("a", best=0.105))  # 10 classes: chance 10%, within 2 points
    assert run_select.is_unhealthy(run("a", best=0.12))
    assert not run_select.is_unhealthy(run("a", best=0.13))
    finding = run_select.health_findings(run("a", best=0.105))[0]
    assert finding["code"] == "at_chance" and "10.5%" in finding["message"] and "10.0%" in finding["message"]
    assert not run_select.is_unhealthy(run("b", best=0.55, classes=["neg", "pos"]))
    assert run_select.is_unhealthy(run("b", best=0.51, classes=["neg", "pos"]))


def test_engine_findings_win_when_present():
    one_class = [{"code": "one_class", "message": "predicts one class for everything"}]
    assert run_select.health_findings(run("a", best=0.9, health=one_class)) == one_class
    assert not run_select.is_unhealthy(run("a", best=0.105, health=[]))  # the engine looked and found nothing


def test_best_accuracy_from_history_when_no_summary():
    r = run("a", status="cancelled", history=[{"val_acc": 0.3}, {"val_acc": 0.5}, {"val_acc": 0.4}])
    assert run_select.best_accuracy(r) == 0.5
    assert run_select.best_accuracy(run("b", status="failed")) is None
    assert run_select.health_findings(run("b", status="failed")) == []


def test_best_run_prefers_own_healthy_best_on_the_current_data():
    runs = [
        run("scratch", mode="scratch", best=0.105, when="2026-01-01T10:05"),  # newest, at chance
        run("frozen", best=0.70, when="2026-01-01T10:01"),
        run("finetune", mode="finetune", best=0.85, when="2026-01-01T10:03"),
        run("class", best=0.99, owner="someone else", when="2026-01-01T10:04"),
        run("animals", best=0.95, data="builtin:animals", when="2026-01-01T10:06"),
        run("cancelled", status="cancelled", best=None, when="2026-01-01T10:07"),
    ]
    assert run_select.best_run(runs, data="builtin:digits", owner="me") == "finetune"
    assert run_select.best_run(runs, data="builtin:animals", owner="me") == "animals"
    assert run_select.best_run(runs, data="builtin:sentiment", owner="me") is None
    assert run_select.best_run(runs, data="builtin:digits", owner="newcomer") == "class"  # no own run: the class's best
    only_bad = [run("s1", best=0.1), run("s2", best=0.11, when="2026-01-01T11:00")]
    assert run_select.best_run(only_bad, data="builtin:digits", owner="me") == "s2"  # unhealthy, but all there is


def test_default_overlay_is_one_comparison_of_completed_runs():
    runs = [
        run("cancelled", status="cancelled", when="2026-01-01T10:09"),  # newest, one point: never a default
        run("ft", mode="finetune", when="2026-01-01T10:08"),
        run("scratch", mode="scratch", when="2026-01-01T10:07"),
        run("frozen", when="2026-01-01T10:06"),
        run("other-labels", labels=50, when="2026-01-01T10:05"),
        run("other-data", data="builtin:animals", when="2026-01-01T10:04"),
        run("failed", status="failed", when="2026-01-01T10:03"),
    ]
    assert run_select.default_overlay(runs) == ["ft", "scratch", "frozen"]
    assert run_select.default_overlay(runs, limit=2) == ["ft", "scratch"]
    assert run_select.default_overlay([run("c", status="cancelled")]) == []
