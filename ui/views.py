"""Drawing a training job (live or finished): shared by the Train and Home pages.

Everything here runs on the script thread and reads only snapshots
(`JobManager.snapshot`) or store records: the worker threads never touch st.*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from tl_core.engine import health
from tl_core.presentation import plots
from tl_core.inputs import shifts
from tl_core.config import CONVERGE_MIN_STEPS
from tl_core.records import JobState, RunSummary, config_of, summary_of
from tl_core.runs.jobs import Job

from ui.services import manager, store
from ui.wording import data_label

#: Seconds between two looks at a running job: a curve point can arrive on every look.
POLL_S = 0.5


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = max(0.0, float(s))
    if s < 10:
        return f"{s:.1f} s"  # short runs: "0.3 s", not "0 s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec} s" if m < 60 else f"{m // 60} h {m % 60} min"


def chart(build, *args, key: str) -> None:
    """`st.plotly_chart(build(*args))`, rebuilt only when `args` change.

    A live page polls twice a second while the curves grow once per epoch: an unchanged figure then costs
    neither the server a rebuild (plotly takes ~50 ms) nor the browser a redraw (the spec it receives is the same).
    """
    memo = st.session_state.setdefault("_figures", {})
    fingerprint = repr((build.__qualname__, args))
    if key not in memo or memo[key][0] != fingerprint:
        memo[key] = (fingerprint, build(*args))
    st.plotly_chart(memo[key][1], width="stretch", key=key)


def job_record(job: Job) -> dict:
    """A job as a run record (the shape the store returns), for tl_core.presentation.plots."""
    return {"run_id": job.run_id or job.job_id, "status": job.state, "config": job.config.to_dict(),
            "summary": job.summary, "history": job.history, "created_at": str(job.submitted_at),
            "device": job.device, "error": job.error, "plan": _job_plan(job)}


def progress_text(job: Job, active: int | None = None) -> str:
    if job.state == "queued" and job.waiting_for:
        return f"starts when the {job.waiting_for.split(':')[-1]} run has finished"
    if job.state == "queued":
        active = manager().active_count() if active is None else active
        runs = "run is" if active == 1 else "runs are"
        return f"queued (position {job.queue_position}) — {active} {runs} training on this server"
    if job.state == "preparing":
        return "preparing: loading the data and the weights…"
    if job.state == "running":
        if job.global_step == 0:
            return f"running: {job.messages[-1] if job.messages else 'computing features…'}"
        eta = f" · ~{fmt_seconds(job.eta_s)} left" if job.eta_s is not None else ""
        return f"epoch {job.epoch}/{job.epochs} · step {job.step}/{job.steps_per_epoch}{eta}"
    if job.state == "completed":
        return f"completed in {fmt_seconds(job.summary.get('wall_s'))}"
    if job.state == "cancelled":
        done = job.summary.get("epochs_done") if job.summary else None
        return f"cancelled after {job.epoch if done is None else done} of {job.epochs} epochs"
    return f"failed: {job.error}"


def progress_value(job: Job) -> float:
    if job.state == "completed":
        return 1.0
    return max(0.0, min(1.0, job.progress))


def _job_plan(job: Job | None) -> dict | None:
    """The plan a job trains: the run's own once it has started, else the one sent with it."""
    if job is None:
        return None
    return job.started.plan if job.started is not None and job.started.plan else job.plan


def describe_config(cfg: dict, plan=None) -> str:
    """One line for a run: data, backbone, mode with its depth label, labels per class and the epochs it trains.
    `plan` (the run's RunPlan or its dict) says the depth and the epochs when there is one: a run on the converge
    budget trains more epochs than it was given."""
    from tl_core.engine.plan import depth_label_of

    record = {"config": cfg, "plan": plan.to_dict() if hasattr(plan, "to_dict") else plan}
    label = depth_label_of(record)
    mode = plots.mode_label(cfg.get("mode")) + (f" ({label})" if label else "")
    if cfg.get("lp_ft"):
        mode += " after LP"
    if cfg.get("recipe") and cfg.get("recipe") != "lp-ft":
        mode += f", {recipe_text(cfg['recipe'])}"
    lpc = cfg.get("labels_per_class")
    epochs = (record["plan"] or {}).get("epochs") or cfg.get("epochs")
    return (f"{data_label(cfg.get('data'))} · {cfg.get('backbone')} · {mode} · "
            f"{'all' if lpc is None else lpc} labels/class · {epochs} epochs")


def recipe_text(name: str) -> str:
    """"Gradual unfreezing (Howard & Ruder 2018)": a run's recipe in the words the Model page used."""
    from tl_core.engine import recipes

    recipe = recipes.get(name)
    return recipe.label if recipe else name


#: A healthy run's line: which checks it passed (tl_core.engine.health).
HEALTHY_TEXT = "Health: ok — no finding (no collapse to one class, no accuracy at chance, no diverged or flat loss)"


def render_health(summary: RunSummary) -> None:
    """Each finding as a warning: an unhealthy run is not a result, and the page says so before its numbers. A
    healthy run says so too, in one line, so a class sees the check ran (runs stored before it have no line)."""
    findings = summary.get("health")
    if findings is None:
        return
    if not findings:
        st.caption(HEALTHY_TEXT, help="The same check as the health column on Compare.")
    for finding in findings:
        st.warning(f"**Not a result:** {finding['message']}. {finding['advice'].capitalize()}.",
                   icon=":material/health_and_safety:")


def render_result(record: dict, key: str) -> None:
    """Health, test accuracy (at the epoch validation chose), confusion matrix and per-class table of a run."""
    summary = summary_of(record)
    render_health(summary)
    c1, c2, c3, c4, c5 = st.columns(5)
    if summary.get("test_acc") is not None:
        c1.metric("Test accuracy", plots.format_pct(summary["test_acc"], 1),
                  help=f"On {summary.get('n_test', '?')} held-out test items, with the weights of epoch "
                       f"{summary.get('selected_epoch')}, the one validation chose. The number this run reports.")
        c2.metric("Validation accuracy", plots.format_pct(summary.get("best_val_acc"), 1),
                  help="Best over the epochs: it chose the epoch, so it is a little optimistic and is not reported.")
        shift = summary.get("ood_shift")
        c3.metric(f"Shifted test ({shift})", plots.format_pct(summary.get("ood_acc"), 1),
                  help=f"The same test items after a distribution shift: {shifts.SHIFTS.get(shift, shift)}. "
                       "Out-of-distribution accuracy: fine-tuning can lose it where LP-FT keeps it (Kumar et al. 2022).")
    else:  # recorded before the test split existed
        c1.metric("Best val accuracy", plots.format_pct(summary.get("best_val_acc"), 1))
        c2.metric("Final val accuracy", plots.format_pct(summary.get("final_val_acc"), 1))
    if summary.get("trainable_params") is not None:
        c4.metric("Trained parameters", plots.format_params(summary["trainable_params"]),
                  help=plots.trainable_summary(summary["trainable_params"], summary.get("total_params") or 0))
    c5.metric("Training examples", f"{summary.get('n_train', '?')}",
              help=f"validation {summary.get('n_val', '?')}, test {summary.get('n_test', '?')}")
    wall = summary.get("wall_s")
    device = summary.get("device") or record.get("device") or "?"
    st.markdown(f"**took {wall:.1f} s on {device}**" if wall is not None else f"ran on {device}")
    notes = []
    if summary.get("head_solver") == "lbfgs":
        notes.append("the head was fitted to convergence on the frozen features (logistic regression, its "
                     f"regularisation C = {summary.get('head_c', '?'):g} chosen by 5-fold cross-validation on the "
                     "training items)" if isinstance(summary.get("head_c"), (int, float)) else
                     "the head was fitted to convergence on the frozen features")
    elif summary.get("budget") == "converge":
        notes.append(f"trained to convergence: {summary.get('epochs_run')} epochs, at least "
                     f"{CONVERGE_MIN_STEPS} optimizer steps")
    if summary.get("cached_boundary"):
        notes.append(f"activations were cached ({summary['cached_boundary']}): the frozen blocks ran once")
    if notes:
        st.caption("; ".join(notes).capitalize() + ".")
    left, right = st.columns([3, 2])
    with left:
        split = "test" if summary.get("test_acc") is not None else "validation"  # older runs: validation
        st.plotly_chart(plots.confusion_matrix(summary.get("confusion_matrix"), summary.get("classes"), split=split),
                        width="stretch", key=f"{key}_cm")
    with right:
        per_class = summary.get("per_class") or []
        if per_class:
            st.markdown("**Per class** (test)" if summary.get("test_acc") is not None else "**Per class** (validation)")
            df = pd.DataFrame(per_class)
            st.dataframe(df, hide_index=True, width="stretch", key=f"{key}_per_class",
                         column_config={c: st.column_config.NumberColumn(format="%.2f")
                                        for c in ("precision", "recall", "f1")})
    change = summary.get("block_similarity")
    if change:
        chart(plots.block_change, change["blocks"], change["cka"], record.get("plan") or summary.get("freeze_depth"),
              key=f"{key}_change")


def render_record(record: dict, key: str) -> None:
    """A run from the store (after a restart, or any finished run)."""
    status = record.get("status")
    cfg = record.get("config") or {}
    st.markdown(f"{JobState(status).icon} **Run {record['run_id']}** — {describe_config(cfg, record.get('plan'))}")
    st.caption(f"status: {status}")
    st.plotly_chart(plots.learning_curves(record.get("history"), cfg.get("mode")), width="stretch", key=f"{key}_curves")
    if status == "completed":
        render_result(record, key)
    elif status == "failed":
        st.error(record.get("error") or "the run failed")


def render_job(job: Job, key: str, *, cancel_key: str | None = "cancel_run") -> None:
    """One job: status, progress bar, Cancel, live curves, and the results once done."""
    cfg = job.config.to_dict()
    run = f"Run {job.run_id}" if job.run_id else f"Job {job.job_id}"
    st.markdown(f"{job.state.icon} **{run}** — {describe_config(cfg, _job_plan(job))}")
    text = progress_text(job)
    if job.state == "failed":
        st.error(job.error or "the run failed")
    elif job.state == "cancelled":
        st.warning(text)
    elif job.done or not cancel_key:
        st.progress(progress_value(job), text=text)
    else:  # one row, so the live curves start high enough to be seen on a projector
        bar, stop = st.columns([6, 1], vertical_alignment="bottom")
        bar.progress(progress_value(job), text=text)
        stop.button("Cancel", key=cancel_key, on_click=manager().cancel, args=(job.job_id,), width="stretch",
                    help="Stops the run within one batch; what it learned so far is kept in the curves.")
    if not job.done and job.messages:  # progress notes ("Measuring which blocks…"): work in hand, not a result
        st.caption(" · ".join(job.messages[-2:]))
    if job.state in ("running", "completed", "cancelled") and job.epochs:
        chart(plots.learning_curves, job.history, cfg.get("mode"), key=f"{key}_curves")
    if job.state == "completed":
        render_result(job_record(job), key)


def per_class_text(counts) -> str:
    """'10' when every class has 10, '5–10' when they differ (a small class gives what it has)."""
    values = [int(v) for v in counts]
    if not values:
        return "0"
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}–{hi}"


@dataclass
class SessionRun:
    """One of this session's runs for the Train page: a job the manager holds (live), or only a stored record."""

    key: str  # the job id, or the run id of a stored-only run
    created: float
    status: str
    config: dict
    run_id: str | None
    job: Job | None = None

    def label(self) -> str:
        return f"{self.status} · Run {self.run_id or self.key} · {describe_config(self.config, _job_plan(self.job))}"


def _stamp(text: str | None) -> float:
    try:
        return datetime.fromisoformat(text).timestamp() if text else 0.0
    except ValueError:
        return 0.0


def session_runs(owner: str) -> list[SessionRun]:
    """This session's runs, newest first: those the server is running or ran since it started (live), and the
    stored ones from before (a restart, or the session URL opened on another computer). Demo runs stay on Home."""
    jobs = manager().jobs(owner)
    known = {j.run_id for j in jobs if j.run_id}
    runs = [SessionRun(j.job_id, j.submitted_at, j.state, j.config.to_dict(), j.run_id, j)
            for j in jobs if not j.label.startswith("demo")]
    for r in store().list_runs(owner=owner, with_history=False):
        if r["run_id"] not in known and r["status"] != "running":
            runs.append(SessionRun(r["run_id"], _stamp(r.get("created_at")), r["status"], r.get("config") or {},
                                   r["run_id"]))
    return sorted(runs, key=lambda r: r.created, reverse=True)


def live(render, *, active: bool, every: float | None = None, changed=None) -> None:
    """Call `render()` inside a fragment that polls every `every` seconds (POLL_S by default) while `active`, and
    reruns the page once when it ends; when not `active`, draw it once, outside any fragment.

    `render()` returns True while something it shows is still running. `changed()`, asked first on every poll,
    returns True once what the page was drawn for no longer holds (a queued run started, a run ended): the page
    then reruns in full without drawing. A poll must cost next to nothing, found with thirty browsers on one
    server (bench/bench_classroom.py): pages that drew a finished run's charts on every poll held the server's
    interpreter so long that its event loop could not send any page an update. The finished view is no fragment
    for the same reason: the browser's poll timer outlives the rerun that ends it, and under load its late ticks
    would redraw a fragment of the same name, charts and all; with no fragment they cost a lookup.
    Each poll also repeats the browser's poll timer (`keep_polling`).
    """
    if not active:
        with st.container():  # where the fragment's own container stood
            render()
        return

    @st.fragment(run_every=every or POLL_S)
    def _fragment() -> None:
        keep_polling(every or POLL_S)
        if changed is not None and changed():
            st.rerun()
        if not render():
            st.rerun()  # a last full rerun: stop polling, refresh the rest of the page

    _fragment()


def keep_polling(every: float) -> None:
    """From a fragment's own rerun, tell the browser again to rerun it every `every` seconds.

    The browser's poll timer comes from one message (`auto_rerun`), sent by the full run that draws the fragment;
    the browser drops every timer when a full run starts. Streamlit 1.67 can lose the rest of that run: a poll that
    reaches the server after the run's script thread has ended, but before the server's event loop has sent the
    run's last messages, starts a new ScriptRunner, and the old one's messages, `auto_rerun` among them, are dropped
    as "from a non-current ScriptRunner" (streamlit/runtime/app_session.py). The poll itself still runs the fragment,
    once; the page then never polls again and shows that run's state for good (bench/bench_classroom.py: a stuck
    page in a class of thirty). Repeating the message on every poll puts the timer back on that one run; a browser
    that has the timer ignores the repeat.
    """
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    fragments = getattr(ctx, "fragment_ids_this_run", None) or []
    if len(fragments) != 1:  # a full run sends it anyway; with several fragments the id is not known here
        return
    msg = ForwardMsg()
    msg.auto_rerun.interval = every
    msg.auto_rerun.fragment_id = fragments[0]
    ctx.enqueue(msg)


def poll_every(job_state: JobState, queue_position: int = 0) -> float:
    """How often a page looks at its run: twice a second while it trains, when every look can bring a curve
    point; a queued run's page shows only its place in the queue, so once a second near the front and every
    3 s further back."""
    if job_state == JobState.QUEUED:
        return 1.0 if queue_position <= 2 else 3.0
    return POLL_S


def poll_plan(job_id: str) -> tuple[bool, float] | None:
    """(ended, poll interval) of a job: when it changes, the page showing the job reruns in full."""
    now = manager().state_of(job_id)
    return None if now is None else (now[0].done, poll_every(*now))


RUN_COLUMNS = ["run", "test acc", "val acc", "health", "mode", "k", "labels/class", "seed", "data", "backbone",
               "seconds", "status", "when", "final val acc", "ood acc", "ood shift", "device", "owner"]
#: Shown on screen (the CSV keeps every column): what a projector must show first comes first.
SHOWN_COLUMNS = RUN_COLUMNS[:13]


def record_summary_rows(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run; the reported number (test accuracy at the epoch validation chose) and its health first."""
    rows = []
    for r in records:
        cfg, summary = config_of(r), summary_of(r)
        k = summary.get("freeze_depth", cfg.get("freeze_depth"))
        if k is None:
            k = 0 if cfg.get("mode") == "scratch" else None
        best = summary.get("best_val_acc")
        if best is None and r.get("history"):
            best = max(h["val_acc"] for h in r["history"])
        findings = summary.get("health") or []
        rows.append({
            "run": r["run_id"],
            "test acc": summary.get("test_acc"),  # empty for runs recorded before the test split existed
            "val acc": best,
            "health": (health.describe(findings) if findings else "ok") if r.get("status") == "completed" else "",
            "mode": f"{cfg.get('mode')} · {cfg['recipe']}" if cfg.get("recipe") else cfg.get("mode"),  # a preset too
            "k": k,
            "labels/class": cfg.get("labels_per_class"),  # empty = all
            "seed": cfg.get("seed", 0),
            "data": cfg.get("data"),
            "backbone": cfg.get("backbone"),
            "seconds": summary.get("wall_s"),
            "status": r.get("status"),
            "when": (r.get("created_at") or "").replace("T", " ")[:19],
            "final val acc": summary.get("final_val_acc"),
            "ood acc": summary.get("ood_acc"),
            "ood shift": summary.get("ood_shift"),
            "device": r.get("device"),
            "owner": r.get("owner"),
        })
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    for col in ("k", "labels/class", "seed"):
        df[col] = df[col].astype("Int64")  # whole numbers; empty stays empty (labels/class: all)
    for col in ("test acc", "val acc", "final val acc", "ood acc"):
        df[col] = df[col].astype(float)
    df["seconds"] = df["seconds"].astype(float).round(1)
    return df
