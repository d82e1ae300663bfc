"""Home: what transfer learning is, and the classroom demo (three ways over three seeds, one chart, one sentence)."""

import statistics

import streamlit as st

from tl_core.runs import demo
from tl_core.presentation import blocks as blocks_chart, plots, report
from tl_core.config import MODE_HELP
from tl_core.records import JobState
from ui import demo_session, services, views, warmup

st.title("Transfer Lab")

#: Charts of a running or finished demo share one row at this height, so the status lines, both charts and the
#: sentence fit a 1280x800 projector without scrolling.
DEMO_CHART_HEIGHT = 320


def explain() -> None:
    """What the three ways mean: above the demo until it is started, below it afterwards (the curves take its place)."""
    st.markdown("Take a network trained on millions of images (or sentences), keep what it learned, and teach it "
                "**your** classes. Three ways to do it:")
    cols = st.columns(3)
    icons = (":material/ac_unit:", ":material/tune:", ":material/eco:")
    for col, mode, icon in zip(cols, ("frozen", "finetune", "scratch"), icons):
        with col:
            st.subheader(f"{icon} {plots.mode_label(mode)}")
            st.write(MODE_HELP[mode])
    st.markdown("**Try it:** pick data on the *Data* page, a backbone and a freeze depth on *Model*, then *Train*. "
                "*Compare* puts everyone's runs side by side; *Predict* tries a model on new images or text.")


# One skeleton before and after the click; only the contents of `intro` and `after` change, so the browser
# keeps the elements it already drew (the backbone drawing among them) instead of re-creating them just
# when the first curve point is due.
demo_jobs = demo_session.demo_jobs()
intro, button_row, demo_area, after = st.container(), st.container(), st.container(), st.container()
with intro:
    if not demo_jobs:
        explain()
        st.header("Classroom demo")
        _configs = demo_session.demo_configs()
        _base, _seeds = _configs[0], len({c.seed for c in _configs})
        st.write(f"The same {_base.backbone}, the same {_base.labels_per_class} labelled images per class from the "
                 f"built-in *{_base.data.split(':', 1)[-1]}* set, the same split and the same initial head, trained "
                 f"three ways for {_base.epochs} epochs. Feature extraction takes seconds, so it runs with {_seeds} "
                 "seeds (another split and start each) and shows how much a seed alone moves the result. It goes "
                 "first; then the other two share the processor. Watch which one learns fastest.")


def demo_button() -> bool:
    """The demo's button, disabled with a caption while the server warms up; True while it still waits."""
    ready = warmup.is_ready()
    st.button("Run the classroom demo", key="run_demo", type="primary", on_click=demo_session.start_demo,
              disabled=not ready,
              help="Starts short training runs on this server: three ways, feature extraction over three seeds "
                   "(under a minute on two CPU cores).")
    if not ready:
        st.caption(":material/hourglass_top: Getting ready: the server is starting its training workers and "
                   "loading the demo's model, so that the demo trains the moment you click. The button turns on "
                   "by itself.")
    return not ready


with button_row:
    views.live(demo_button, active=not warmup.is_ready(), every=0.5)
    demo_note = demo_session.take_demo_note()
    if demo_note:
        st.info(demo_note)


def demo_curves(records: list[dict]):
    """The curves, sized for the demo's row: one line per way (the mean over its seeds) with the seeds' band."""
    fig = plots.mode_curves(records, "val_acc")
    fig.update_layout(height=DEMO_CHART_HEIGHT, title_text="Learning curves: validation accuracy",
                      legend={"orientation": "h", "y": -0.22, "x": 0, "yanchor": "top"},
                      margin={"b": 90})
    return fig


def demo_gap(runs: list[dict]):
    """The transfer-gap chart in the demo's row: its bars are named on the axis, so no legend beside them."""
    fig = plots.transfer_gap(runs)
    fig.update_layout(height=DEMO_CHART_HEIGHT, showlegend=False)
    return fig


def mode_status(jobs) -> tuple[str, float | None]:
    """One line for one way over its seeds: the run in hand, or what the finished ones reached."""
    label = plots.mode_label(jobs[0].config.mode)
    done = [j for j in jobs if j.done]
    if len(done) < len(jobs):
        current = next((j for j in jobs if j.state.active), None) or next(j for j in jobs if not j.done)
        progress = sum(1.0 if j.done else views.progress_value(j) for j in jobs) / len(jobs)
        return f"{label}: seed {jobs.index(current) + 1} of {len(jobs)} · {views.progress_text(current)}", progress
    accs = [j.summary["test_acc"] for j in done if j.state == "completed" and "test_acc" in j.summary]
    if len(accs) < len(jobs):
        return f"{label}: {len(accs)} of {len(jobs)} seeds completed", None
    spread = f" \u00b1 {100 * statistics.stdev(accs):.0f}" if len(accs) > 1 else ""
    seeds = f"over {len(accs)} seeds" if len(accs) > 1 else "one seed"
    return f"{label}: test accuracy {100 * statistics.mean(accs):.0f}%{spread} ({seeds})", None


def draw_demo() -> bool:
    jobs = demo_session.demo_jobs()
    if not jobs:
        return False
    active = any(not j.done for j in jobs)
    by_mode: dict[str, list] = {m: [] for m in ("frozen", "finetune", "scratch")}
    for job in jobs:
        by_mode.setdefault(job.config.mode, []).append(job)
    by_mode = {m: group for m, group in by_mode.items() if group}
    for col, group in zip(st.columns(len(by_mode)), by_mode.values()):
        text, progress = mode_status(group)
        if progress is not None:
            col.progress(progress, text=text)
        else:
            icon = (JobState.COMPLETED if all(j.state == JobState.COMPLETED for j in group) else JobState.FAILED).icon
            col.markdown(f"{icon} **{text}**")
    if active:
        b1, b2 = st.columns([1, 5])
        b1.button("Cancel", key="cancel_demo", on_click=demo_session.cancel_demo)
        b2.caption(demo.BUDGET_NOTE)
    runs = []
    if not active:
        store = services.store()
        runs = [r for r in (store.get_run(j.run_id) for j in jobs if j.run_id) if r is not None]
        if any(r["status"] == "completed" for r in runs):
            reading = report.read_gap(runs)
            (st.success if reading.ok else st.warning)(reading.text)
            if reading.detail:
                st.caption(reading.detail)
        else:
            st.warning("The demo did not complete: run it again.")
    left, right = st.columns(2)
    with left:
        views.chart(demo_curves, [views.job_record(j) for j in jobs], key="demo_overlay")
    with right:
        if any(r["status"] == "completed" for r in runs):
            st.plotly_chart(demo_gap(runs), width="stretch", key="demo_gap")
        else:
            st.caption("The transfer-gap chart appears here when every run has finished: the same data and splits, "
                       "each way's test accuracy (at the epoch validation chose) side by side, with its spread.")
    return active


with demo_area:
    demo_ids = [j.job_id for j in demo_jobs]

    def demo_phase() -> tuple[bool, bool]:
        """(first run ended, every run ended): the page looks twice a second until the first curve is complete,
        then once a second (the slow runs' epochs take seconds; the browser and the server, polling, held a core
        the from-scratch run needed), and stops at the end."""
        ended = [(plan := views.poll_plan(i)) is None or plan[0] for i in demo_ids]
        return bool(ended) and ended[0], all(ended)

    phase = demo_phase()
    views.live(draw_demo, active=not phase[1], every=1.0 if phase[0] else views.POLL_S,
               changed=lambda: demo_phase() != phase)
with after:
    if demo_jobs:  # the explanation moves below the result: the charts take its place at the top
        st.divider()
        explain()


# Below the button, so the button is ready before the backbone is described (torchvision's import takes seconds).
def _demo_blocks(mode: str):
    """What one of the three runs trains, block by block: the picture to keep in mind while the curves grow."""
    import tl_core

    cfg = next(c for c in demo_session.demo_configs() if c.mode == mode)
    return blocks_chart.block_diagram(tl_core.config_plan(cfg, len(services.builtin_info(cfg.data)["classes"])))


shown = st.segmented_control("What each run trains", ["frozen", "finetune", "scratch"], default="finetune",
                             format_func=plots.mode_label, key="demo_blocks_mode") or "finetune"
views.chart(_demo_blocks, shown, key="demo_blocks")

st.divider()
st.caption(f"Training device on this server: **{services.device_text()}** · "
           f"{services.max_concurrent()} runs train at once, more wait in a queue.")
