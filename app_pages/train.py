"""Train: what will run, the Start button, and the live view of this session's run."""

import streamlit as st

from tl_core import plots, report
from ui import state, views

st.title("Train")

manager, owner = state.manager(), state.owner()
choice = state.current_data()

# ---- what will run ---------------------------------------------------------------------------------
problems: list[str] = []
cfg = None
info = None
if not choice.ready:
    problems.append("No dataset loaded: pick a built-in set or upload one on the Data page.")
else:
    try:
        cfg = state.build_config(choice)
        info = state.describe(cfg.backbone)
    except Exception as err:
        problems.append(state.user_error(err) or f"{type(err).__name__}: {err}")

if cfg is not None and info is not None:
    n_classes = len(choice.classes)
    depth = {"frozen": len(info["blocks"]), "scratch": 0}.get(cfg.mode, cfg.freeze_depth or 0)
    trainable, total, _ = state.trainable_params(info, n_classes, cfg.mode, depth)
    mode_text = plots.mode_label(cfg.mode) + (f" (k={cfg.freeze_depth})" if cfg.mode == "finetune" else "")
    if cfg.mode != "scratch" and not cfg.pretrained:
        mode_text += ", random initialisation"
    if cfg.lp_ft:
        mode_text += ", head trained first on frozen features (LP-FT)"
    size = f"{cfg.image_size} px" if cfg.image_size else "auto"
    rows = {
        "Data": f"{choice.label} · {n_classes} classes · "
                f"{cfg.labels_per_class or 'all'} labels/class · {cfg.val_per_class} validation/class · seed {cfg.seed}",
        "Backbone": f"{cfg.backbone} ({info['arch']}, {plots.format_params(info['params'])}, weights {info['weights']})",
        "Mode": mode_text,
        "What trains": report.describe_freeze(info["blocks"], depth, cfg.mode),
        "Trainable parameters": f"{trainable:,} of {total:,} ({100 * trainable / total:.1f}%)",
        "Hyperparameters": f"{cfg.epochs} epochs · lr {cfg.effective_lr:g} · batch {cfg.batch_size}"
                           + (f" · image size {size}" if info["family"] == "vision" else f" · {cfg.max_length} tokens")
                           + (" · augmentation" if cfg.augment else ""),
    }
    st.markdown("\n".join(f"- **{k}:** {v}" for k, v in rows.items()))
    if choice.kind and state.FAMILY[choice.kind] != info["family"]:
        problems.append(f"{cfg.backbone} is a {info['family']} backbone but the data holds {choice.kind}s.")
    if cfg.mode != "scratch" and cfg.pretrained and info["weights"] == "download":
        problems.append(f"Pretrained weights for {cfg.backbone} are not on this machine: tick *Random "
                        "initialisation* on the Model page or pick a bundled backbone.")
    if info["family"] == "vision" and cfg.image_size:
        try:
            from tl_core import backbones

            backbones.check_image_size(backbones.get_spec(cfg.backbone), cfg.image_size)
        except Exception as err:
            problems.append(state.user_error(err) or str(err))

for p in problems:
    st.error(p)


def start_run() -> None:
    """The only place a run starts: the Start button's callback (runs once per click)."""
    ss = st.session_state
    ss.pop("start_error", None)
    try:
        config = state.build_config(state.current_data())
        choice_now = state.current_data()
        job_id = manager.submit(config, owner=owner, dataset=choice_now.dataset, label="train")
    except Exception as err:
        ss["start_error"] = state.user_error(err) or f"{type(err).__name__}: {err}"
        return
    ss["active_job"] = job_id
    ss["train_view"] = job_id


st.button("Start training", key="start_run", type="primary", on_click=start_run, disabled=bool(problems),
          help="Queues the run on this server; moving other widgets never stops or repeats it.")
if st.session_state.get("start_error"):
    st.error(st.session_state["start_error"])

# ---- this session's runs -------------------------------------------------------------------------------
st.divider()
my_jobs = [j for j in manager.jobs(owner) if j.label == "train"]
if my_jobs:
    ids = [j.job_id for j in my_jobs][::-1]  # newest first
    by_id = {j.job_id: j for j in my_jobs}
    if st.session_state.get("train_view") not in ids:
        st.session_state["train_view"] = st.session_state.get("active_job") if st.session_state.get(
            "active_job") in ids else ids[0]
    if len(ids) > 1:
        st.selectbox("Show run", ids, key="train_view",
                     format_func=lambda i: f"{views.STATE_ICONS.get(by_id[i].state, '')} {by_id[i].run_id or i} · "
                                           f"{views.describe_config(by_id[i].config.to_dict())}")
    view_id = st.session_state["train_view"]
    first = manager.snapshot(view_id)

    def draw() -> bool:
        job = manager.snapshot(view_id)
        views.render_job(job, key="train")
        if not job.done:
            st.caption(f"{manager.active_count()} of {manager.max_concurrent} training slots busy on this server.")
        return not job.done

    views.live(draw, active=first is not None and not first.done)
else:
    # After a server restart the manager forgets its jobs; the store remembers this session's runs.
    past = [r for r in state.store().list_runs(owner=owner) if r["status"] != "running"]
    if past:
        st.caption("Your last run (from the run store):")
        views.render_record(past[0], key="train_past")
    else:
        st.info("No runs yet in this session: press **Start training**.")
