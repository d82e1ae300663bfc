"""Home: what transfer learning is, and the classroom demo (three runs, one chart, one sentence)."""

import os

import streamlit as st

from tl_core import demo, plots, report
from tl_core.config import MODE_HELP
from ui import state, views

st.title("Transfer Lab")
st.markdown("Take a network trained on millions of images (or sentences), keep what it learned, and teach it "
            "**your** classes. Three ways to do it:")

cols = st.columns(3)
for col, mode, icon in zip(cols, ("frozen", "finetune", "scratch"), ("🧊", "🔧", "🌱")):
    with col:
        st.subheader(f"{icon} {plots.mode_label(mode)}")
        st.write(MODE_HELP[mode])

st.markdown("**Try it:** pick data on the *Data* page, a backbone and a freeze depth on *Model*, then *Train*. "
            "*Compare* puts everyone's runs side by side; *Predict* tries a model on new images or text.")

# ---- the classroom demo ----------------------------------------------------------------------
st.header("Classroom demo")


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


_base = _demo_configs()[0]
st.write(f"The same {_base.backbone}, the same {_base.labels_per_class} labelled images per class from the built-in "
         f"*{_base.data.split(':', 1)[-1]}* set, the same split and the same initial head, trained three ways for "
         f"{_base.epochs} epochs. Feature extraction goes first (it takes seconds), then the other two share the "
         "processor. Watch which one learns fastest.")


st.button("Run the classroom demo", key="run_demo", type="primary", on_click=start_demo,
          help="Starts three short training runs on this server (under a minute on two CPU cores).")
if st.session_state.get("demo_note"):
    st.info(st.session_state.pop("demo_note"))


def draw_demo() -> bool:
    jobs = _demo_jobs()
    if not jobs:
        return False
    active = any(not j.done for j in jobs)
    for job in jobs:
        label = plots.mode_label(job.config.mode)
        line = views.progress_text(job)
        if job.state in ("queued", "preparing", "running"):
            st.progress(views.progress_value(job), text=f"{label}: {line}")
        else:
            st.markdown(f"{views.STATE_ICONS.get(job.state, '')} **{label}**: {line}")
    if active:
        st.button("Cancel", key="cancel_demo", on_click=cancel_demo)
    views.chart(plots.overlay_curves, [views.job_record(j) for j in jobs], "val_acc", key="demo_overlay")
    if not active:
        store = state.store()
        runs = [r for r in (store.get_run(j.run_id) for j in jobs if j.run_id) if r is not None]
        if any(r["status"] == "completed" for r in runs):
            st.plotly_chart(plots.transfer_gap(runs), width="stretch", key="demo_gap")
            st.success(report.gap_sentence(runs))
        else:
            st.warning("The demo did not complete: run it again.")
    return active


demo_jobs = _demo_jobs()
views.live(draw_demo, active=any(not j.done for j in demo_jobs))


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
