"""Home: what transfer learning is, and the classroom demo (three runs, one chart, one sentence)."""

import os

import streamlit as st

from tl_core import demo, plots, report
from tl_core.config import MODE_HELP
from ui import state, views

st.title("Transfer Lab")

#: Charts of a running or finished demo share one row at this height, so the status lines, both charts and the
#: sentence fit a 1280x800 projector without scrolling.
DEMO_CHART_HEIGHT = 380


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


def _env_int(name: str) -> int | None:
    try:
        v = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return v if v > 0 else None


def _demo_configs():
    overrides = {}
    if _env_int("TL_DEMO_EPOCHS"):
        overrides["epochs"] = _env_int("TL_DEMO_EPOCHS")
    if _env_int("TL_DEMO_LABELS_PER_CLASS"):
        overrides["labels_per_class"] = _env_int("TL_DEMO_LABELS_PER_CLASS")
    if _env_int("TL_DEMO_VAL_PER_CLASS"):
        overrides["val_per_class"] = _env_int("TL_DEMO_VAL_PER_CLASS")
    return demo.classroom_demo_configs(**overrides)


def _demo_jobs():
    """This session's latest demo: ids in session state, or recovered from the manager after a refresh."""
    manager = state.manager()
    ids = st.session_state.get("demo_jobs")
    if not ids:
        mine = [j for j in manager.jobs(state.owner()) if j.label.startswith("demo")]
        ids = [j.job_id for j in mine[-3:]]
        if ids:
            st.session_state["demo_jobs"] = ids
    jobs = [manager.snapshot(i) for i in ids or []]
    return [j for j in jobs if j is not None]


def start_demo() -> None:
    running = [j for j in _demo_jobs() if not j.done]
    if running:
        st.session_state["demo_note"] = "The demo is already running: its three runs are below."
        return
    manager, owner = state.manager(), state.owner()
    st.session_state["demo_jobs"] = demo.submit_demo(manager, owner, _demo_configs())
    st.session_state.pop("demo_note", None)


def cancel_demo() -> None:
    for job in _demo_jobs():
        state.manager().cancel(job.job_id)


# One skeleton before and after the click; only the contents of `intro` and `after` change, so the browser
# keeps the elements it already drew (the backbone drawing among them) instead of re-creating them just
# when the first curve point is due.
demo_jobs = _demo_jobs()
intro, button_row, demo_area, after = st.container(), st.container(), st.container(), st.container()
with intro:
    if not demo_jobs:
        explain()
        st.header("Classroom demo")
        _base = _demo_configs()[0]
        st.write(f"The same {_base.backbone}, the same {_base.labels_per_class} labelled images per class from the "
                 f"built-in *{_base.data.split(':', 1)[-1]}* set, the same split and the same initial head, trained "
                 f"three ways for {_base.epochs} epochs. Feature extraction goes first (it takes seconds), then the "
                 "other two share the processor. Watch which one learns fastest.")
with button_row:
    st.button("Run the classroom demo", key="run_demo", type="primary", on_click=start_demo,
              help="Starts three short training runs on this server (under a minute on two CPU cores).")
    if st.session_state.get("demo_note"):
        st.info(st.session_state.pop("demo_note"))


def demo_curves(records: list[dict]):
    """The overlay, sized for the demo's row: one legend line naming the three ways (one run each)."""
    fig = plots.overlay_curves(records, "val_acc")
    mode_of = {r["run_id"]: (r.get("config") or {}).get("mode") for r in records}
    for trace in fig.data:
        trace.name = plots.mode_label(mode_of.get(trace.meta))
    fig.update_layout(height=DEMO_CHART_HEIGHT, title_text="Learning curves: validation accuracy",
                      legend={"orientation": "h", "y": -0.22, "x": 0, "yanchor": "top"},
                      margin={"b": 90})
    return fig


def demo_gap(runs: list[dict]):
    """The transfer-gap chart in the demo's row: its bars are named on the axis, so no legend beside them."""
    fig = plots.transfer_gap(runs)
    fig.update_layout(height=DEMO_CHART_HEIGHT, showlegend=False)
    return fig


def draw_demo() -> bool:
    jobs = _demo_jobs()
    if not jobs:
        return False
    active = any(not j.done for j in jobs)
    for col, job in zip(st.columns(len(jobs)), jobs):
        label = plots.mode_label(job.config.mode)
        line = views.progress_text(job)
        if job.state in ("queued", "preparing", "running"):
            col.progress(views.progress_value(job), text=f"{label}: {line}")
        else:
            col.markdown(f"{views.STATE_ICONS.get(job.state, '')} **{label}**: {line}")
    if active:
        st.button("Cancel", key="cancel_demo", on_click=cancel_demo)
    runs = []
    if not active:
        store = state.store()
        runs = [r for r in (store.get_run(j.run_id) for j in jobs if j.run_id) if r is not None]
        if any(r["status"] == "completed" for r in runs):
            st.success(report.gap_sentence(runs))
        else:
            st.warning("The demo did not complete: run it again.")
    left, right = st.columns(2)
    with left:
        views.chart(demo_curves, [views.job_record(j) for j in jobs], key="demo_overlay")
    with right:
        if any(r["status"] == "completed" for r in runs):
            st.plotly_chart(demo_gap(runs), width="stretch", key="demo_gap")
        else:
            st.caption("The transfer-gap chart appears here when the three runs have finished: the same data and "
                       "split, the best validation accuracy of each way side by side.")
    return active


with demo_area:
    views.live(draw_demo, active=any(not j.done for j in demo_jobs))
with after:
    if demo_jobs:  # the explanation moves below the result: the charts take its place at the top
        st.divider()
        explain()


# Below the button, so the button is ready before the backbone is described (torchvision's import takes seconds).
def _demo_blocks(mode: str):
    """What one of the three runs trains, block by block: the picture to keep in mind while the curves grow."""
    cfg = next(c for c in _demo_configs() if c.mode == mode)
    info, n_classes = state.describe(cfg.backbone), len(state.builtin_info(cfg.data)["classes"])
    head = state.trainable_params(info, n_classes, mode, cfg.freeze_depth or 0)[2]
    return plots.block_diagram(info["blocks"], info["block_params"], cfg.freeze_depth, mode, head_params=head)


shown = st.segmented_control("What each run trains", ["frozen", "finetune", "scratch"], default="finetune",
                             format_func=plots.mode_label, key="demo_blocks_mode") or "finetune"
views.chart(_demo_blocks, shown, key="demo_blocks")

st.divider()
st.caption(f"Training device on this server: **{state.device_text()}** · "
           f"{state.max_concurrent()} runs train at once, more wait in a queue.")
