"""The "When does transfer pay?" view: a labels-per-class sweep started with one click, trained in the background
by the job manager, drawn from the run store (every finished cell of the class is reused)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from tl_core.presentation import plots, report
from tl_core.runs import sweep

from ui import messages, settings, views
from ui.data_choice import current_data, load_choice_dataset
from ui.run_config import config_or_problem, freeze_depth
from ui.services import describe, manager, store
from ui.session_id import owner
from ui.wording import count, data_label

LABEL = "efficiency"
NOTE = "efficiency"  # what the last click on the sweep's button did


def _plan():
    """(configs of the whole sweep, the runs that already answer some of them), for the current data and model."""
    choice = current_data()
    base, problem = config_or_problem(choice)
    if problem:
        return None, [], problem
    try:
        ds = load_choice_dataset(choice)
        from tl_core.inputs import data
        from tl_core.engine import training

        training.resolve(base, ds)
        pool = data.make_split(ds, val_per_class=base.val_per_class, test_per_class=base.test_per_class,
                               labels_per_class=None, seed=base.seed)
    except Exception as err:
        return None, [], messages.error_text(err)
    per_class = int(np.bincount(ds.labels[pool.train], minlength=len(ds.classes)).min())
    info = describe(base.backbone)
    depth = base.freeze_depth if base.mode == "finetune" else freeze_depth(len(info["blocks"]))
    configs = sweep.efficiency_configs(base, per_class, seeds=int(settings.get("efficiency_seeds")),
                                       depth=depth)
    for c in configs:
        training.resolve(c, ds)
    runs = store().list_runs(dataset=base.data, backbone=base.backbone)
    return configs, runs, None


def _jobs():
    return [j for j in manager().jobs(owner()) if j.label == LABEL]


def _start() -> None:
    configs, runs, problem = _plan()
    if problem:
        messages.leave_note(NOTE, problem)
        return
    todo = sweep.missing(configs, runs)
    choice = current_data()
    for config in todo:
        manager().submit(config, owner=owner(), dataset=choice.dataset, label=LABEL)
    messages.leave_note(NOTE, f"{count(len(todo), 'run')} queued; {len(configs) - len(todo)} of "
                              f"{count(len(configs), 'run')} were already in the run store." if todo
                              else "Every run of this sweep is already in the run store.")


def _cancel() -> None:
    for job in _jobs():
        manager().cancel(job.job_id)


def render() -> None:
    st.number_input("Seeds per setting", min_value=1, max_value=5, key="efficiency_seeds",
                    value=settings.initial("efficiency_seeds"),
                    help="Each seed is another split and another start: error bars need at least two.")
    settings.keep("efficiency_seeds")
    configs, runs, problem = _plan()
    if problem:
        st.info(problem)
        return
    base = configs[0]
    lpcs = sorted({c.labels_per_class for c in configs})
    todo = sweep.missing(configs, runs)
    st.caption(f"{data_label(base.data)} · {base.backbone} · labels per class {', '.join(map(str, lpcs))} · "
               f"fine-tuning at k={next(c.freeze_depth for c in configs if c.mode == 'finetune')} · "
               f"{len(configs) - len(todo)} of {count(len(configs), 'run')} done")
    jobs = _jobs()
    active = any(not j.done for j in jobs)
    c1, c2 = st.columns([1, 4])
    c1.button("Run the sweep", key="efficiency_start", type="primary", on_click=_start, disabled=active or not todo,
              help="Queues the missing runs; they train in the background while you use the other pages.")
    if active:
        c2.button("Cancel the sweep", key="efficiency_cancel", on_click=_cancel)
    note = messages.take_note(NOTE)
    if note:
        st.info(note)

    def draw() -> bool:
        mine = _jobs()
        running = [j for j in mine if not j.done]
        if running:
            done = sum(j.done for j in mine)
            st.progress(done / len(mine), text=f"{done} of {count(len(mine), 'run')} done · now: "
                                               f"{views.describe_config(running[0].config.to_dict())} · "
                                               f"{views.progress_text(running[0])}")
        fresh = store().list_runs(dataset=base.data, backbone=base.backbone)
        views.chart(plots.data_efficiency, fresh, key="efficiency_chart")
        st.info(report.efficiency_sentence(fresh))
        return bool(running)

    views.live(draw, active=active)
