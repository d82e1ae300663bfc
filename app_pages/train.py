"""Train: what will run, the Start button, this session's runs (newest shown) and the live view of one."""

import numpy as np
import streamlit as st

import tl_core
from tl_core.presentation import plots
from tl_core.inputs import shifts
from tl_core.engine import training
from ui import data_choice, messages, run_config, services, session_id, train_runs, views

st.title("Train")

manager, owner = services.manager(), session_id.owner()
choice = data_choice.current_data()
runs = views.session_runs(owner)
a_run_trains = any(r.job is not None and not r.job.done for r in runs)

# ---- what will run ---------------------------------------------------------------------------------
problems: list[str] = []
cfg = None
info = None
if not choice.ready:
    problems.append("No dataset loaded: pick a built-in set or upload one on the Data page.")
else:
    try:
        cfg = run_config.build_config(choice)
        info = services.describe(cfg.backbone)
    except Exception as err:
        problems.append(messages.error_text(err))

if cfg is not None and info is not None:
    n_classes = len(choice.classes)
    plan = tl_core.config_plan(cfg, n_classes)
    problems.extend(plan.problems)
    try:  # the run's own plan: what trains, and for how many epochs (a converge budget's, not --epochs)
        if not plan.problems:
            plan = tl_core.plan_for(cfg, data_choice.load_choice_dataset(choice))
    except Exception as err:
        problems.append(messages.error_text(err))
    trainable, total = plan.trainable_params, plan.total_params
    depth_text = f" ({tl_core.depth_label(plan)})" if tl_core.depth_label(plan) else ""
    mode_text = plots.mode_label(cfg.mode) + depth_text
    if cfg.mode != "scratch" and not cfg.pretrained:
        mode_text += ", random initialisation"
    if cfg.lp_ft:
        mode_text += ", head trained first on frozen features (LP-FT)"
    if cfg.recipe and cfg.recipe != "lp-ft":
        mode_text += f", recipe: {views.recipe_text(cfg.recipe)}"
    size = f"{cfg.image_size} px" if cfg.image_size else "auto"
    head_only = plan.head_only and not cfg.augment  # cached pooled features: a convex fit
    try:  # the split the run will use, so the numbers below are the ones it trains and scores on
        ds = data_choice.load_choice_dataset(choice)
        split = data_choice.split_of(ds)
    except Exception as err:
        split = None
        problems.append(f"{choice.label} cannot be split: {messages.error_text(err)}")
    if split is not None:
        labels = np.bincount(ds.labels[split.train], minlength=n_classes)
        held = np.bincount(ds.labels[split.val], minlength=n_classes)
        tested = np.bincount(ds.labels[split.test], minlength=n_classes)
        data_text = (f"{choice.label} · {n_classes} classes · "
                     f"{views.per_class_text(labels) if cfg.labels_per_class else 'all'} labels/class · "
                     f"{views.per_class_text(held)} validation/class · {views.per_class_text(tested)} test/class · "
                     f"seed {cfg.seed} ({len(split.train):,} training, {len(split.val):,} validation and "
                     f"{len(split.test):,} test items)")
    else:
        data_text = f"{choice.label} · {n_classes} classes · seed {cfg.seed}"
    rows = {
        "Data": data_text,
        "Backbone": f"{cfg.backbone} ({info['arch']}, {plots.format_params(info['params'])}, weights {info['weights']})",
        "Mode": mode_text,
        "What trains": plan.sentence(),
        "Trainable parameters": f"{trainable:,} of {total:,} ({100 * trainable / total:.1f}%)",
        "Hyperparameters": (f"head fitted to convergence (logistic regression, regularisation chosen by "
                            f"cross-validation) · {plan.epochs or cfg.epochs} curve points" if head_only else
                            f"{plan.epochs or cfg.epochs} epochs of {plan.steps_per_epoch or '?'} "
                            f"step{'' if plan.steps_per_epoch == 1 else 's'} · "
                            f"lr {cfg.effective_lr(info['family']):g} · batch {cfg.batch_size}")
                           + (f" · image size {size}" if info["family"] == "vision" else f" · {cfg.max_length} tokens")
                           + (" · augmentation" if cfg.augment else ""),
        "Budget": training.budget_text(cfg) if not head_only else "until the head converges",
        "Reported": f"test accuracy at the epoch validation picks, and on the test items after a shift: "
                    f"{shifts.SHIFTS[shifts.shift_for(cfg.ood_shift, choice.kind or 'image')]}",
    }
    # While a run trains its curves matter more: the settings fold into one line, so progress and curves fit a
    # 1280x800 projector without scrolling.
    summary = (st.expander(f"What will run: {views.describe_config(cfg.to_dict())}") if a_run_trains
               else st.container())
    summary.markdown("\n".join(f"- **{k}:** {v}" for k, v in rows.items()))
    if choice.kind and run_config.FAMILY[choice.kind] != info["family"]:
        problems.append(f"{cfg.backbone} is a {info['family']} backbone but the data holds {choice.kind}s.")
    if cfg.mode != "scratch" and cfg.pretrained and info["weights"] == "download":
        problems.append(f"Pretrained weights for {cfg.backbone} are not on this machine: tick *Random "
                        "initialisation* on the Model page or pick a bundled backbone.")
    if info["family"] == "vision" and cfg.image_size:
        try:
            from tl_core.models import backbones

            backbones.check_image_size(backbones.get_spec(cfg.backbone), cfg.image_size)
        except Exception as err:
            problems.append(messages.user_error(err) or str(err))

for p in problems:
    st.error(p)

st.button("Start training", key="start_run", type="primary", on_click=train_runs.start_run, disabled=bool(problems),
          help="Queues the run on this server; moving other widgets never stops or repeats it.")
if train_runs.start_error():
    st.error(train_runs.start_error())

# ---- this session's runs -------------------------------------------------------------------------------
st.divider()
if not runs:
    st.info("No runs yet in this session: press **Start training**.")
else:
    by_key = {r.key: r for r in runs}
    shown = by_key[train_runs.shown_run(list(by_key))]
    if len(runs) > 1:  # the newest is shown unless another is picked; a new run is shown at once
        st.selectbox(f"Your runs in this session ({len(runs)}, newest first)", list(by_key), key=train_runs.VIEW_KEY,
                     format_func=lambda k: by_key[k].label(), on_change=train_runs.run_picked)
    if shown.job is not None:
        view_id = shown.key

        def draw() -> bool:
            job = manager.snapshot(view_id)
            views.render_job(job, key="train")
            if not job.done:
                st.caption(f"{manager.active_count()} of {manager.max_concurrent} training slots busy on this server.")
            return not job.done

        plan = views.poll_plan(view_id)  # (ended, poll interval); None: the job is gone
        views.live(draw, active=plan is not None and not plan[0], every=plan and plan[1],
                   changed=lambda: views.poll_plan(view_id) != plan)
    else:  # stored only: from before a server restart
        record = services.store().get_run(shown.key)
        if record is None:
            st.info("This run was deleted (Compare page).")
        else:
            views.render_record(record, key="train_past")
