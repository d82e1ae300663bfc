"""The "Do better ImageNet models transfer better?" view on the Model page, below "Which backbone?".

It reads the ranking made above (ui.ranking: the same settings, so the same backbones and scores), sets each
backbone's ImageNet top-1 against the test accuracy of its feature-extraction runs over seeds
(tl_core.runs.imagenet_transfer, drawn by tl_core.presentation.imagenet_chart), and trains the missing runs in the
background with one click through the job manager, as the ranking's own check does: progress, cancel, and every
finished run of the store reused.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tl_core.presentation import imagenet_chart
from tl_core.runs.imagenet_transfer import TransferTable, missing, seed_list, transfer_table

from ui import settings, views
from ui.data_choice import current_data
from ui.ranking import rank_jobs, settings_key
from ui.run_config import config_or_problem
from ui.services import manager, store
from ui.session_id import owner
from ui.table_cells import dash_missing
from ui.wording import count

LABEL = "imagenet_check"  # the job manager's label of the runs this view trains
NOTE = (
    "Kornblith, Shlens and Le (CVPR 2019) asked whether networks that are more accurate on ImageNet also give "
    "better features for other data. Over 16 networks and 12 data sets the answer was yes, strongly, for a linear "
    "head on fixed features. Here the class asks it on its own data: each backbone's published ImageNet top-1 "
    "against the test accuracy of its feature-extraction runs, over several seeds, with the random-init copies as a "
    "control. A handful of backbones can show a trend, never prove one."
)


def _jobs():
    return [j for j in manager().jobs(owner()) if j.label == LABEL]


def _ranking(choice, config):
    """The finished (or cancelled, with its scores so far) ranking of the view above on these settings, if any."""
    include_random = choice.kind == "image" and bool(settings.get("rank_random"))
    job = rank_jobs().latest(owner(), settings_key(config, include_random, int(settings.get("rank_per_class"))))
    return job.ranking if job is not None and job.done and job.ranking is not None else None


def _queue(config, dataset, ranking, seeds: int) -> None:
    records = store().list_runs(dataset=ranking.data, with_history=False)
    for run in missing(ranking, config, records, seeds):
        manager().submit(run, owner=owner(), dataset=dataset, label=LABEL)


def _cancel() -> None:
    for job in _jobs():
        if not job.done:
            manager().cancel(job.job_id)


def table_frame(table: TransferTable) -> pd.DataFrame:
    """One row per backbone, best frozen accuracy first: what the chart plots, as numbers."""
    rows = sorted(table.rows, key=lambda r: -1.0 if r.frozen.mean is None else r.frozen.mean, reverse=True)
    return pd.DataFrame({
        "backbone": [r.name for r in rows],
        "weights": ["pretrained" if r.pretrained else "random init" for r in rows],
        "ImageNet top-1": pd.Series([r.imagenet_acc1 for r in rows], dtype=float),
        "LogME": [r.logme for r in rows],
        "frozen test acc": pd.Series([None if r.frozen.mean is None else 100 * r.frozen.mean for r in rows],
                                     dtype=float),
        "± std": pd.Series([None if r.frozen.std is None else 100 * r.frozen.std for r in rows], dtype=float),
        "seeds": [r.frozen.n for r in rows],
    })


def _show(table: TransferTable) -> None:
    frame, columns = dash_missing(table_frame(table), {
        "ImageNet top-1": st.column_config.NumberColumn(format="%.1f%%", help="as published with the weights; a "
                                                        "random-init copy never saw ImageNet"),
        "LogME": st.column_config.NumberColumn(format="%.3f"),
        "frozen test acc": st.column_config.NumberColumn(format="%.1f%%", help="mean over the seeds of the "
                                                         "feature-extraction runs' test accuracy"),
        "± std": st.column_config.NumberColumn(format="%.1f", help="standard deviation over seeds, in points"),
        "seeds": st.column_config.NumberColumn(width=50, help="seeds with a healthy run"),
    })
    st.dataframe(frame, hide_index=True, width="stretch", key="imagenet_table", column_config=columns)


def render() -> None:
    with st.container(key="imagenet_view"):
        _render()


def _render() -> None:
    st.subheader("Do better ImageNet models transfer better?")
    st.write(NOTE)
    choice = current_data()
    if choice.ready and choice.kind != "image":
        st.caption("ImageNet accuracy belongs to the vision backbones: load image data to ask this question.")
        return
    config, problem = config_or_problem(choice)
    if problem:
        st.info(problem)
        return
    ranking = _ranking(choice, config)
    if ranking is None:
        st.caption("Rank the backbones above first (**Rank backbones**): this view sets their scores and ImageNet "
                   "accuracy against the test accuracy of their feature-extraction runs.")
        return
    c1, c2, c3 = st.columns([1, 3, 1], vertical_alignment="bottom")
    seeds = int(c1.number_input("Seeds per backbone", min_value=1, max_value=5, key="imagenet_seeds",
                                value=settings.initial("imagenet_seeds"),
                                help="Each seed is another split and another head: error bars need at least two."))
    settings.keep("imagenet_seeds")
    todo = missing(ranking, config, store().list_runs(dataset=ranking.data, with_history=False), seeds)
    total = len(ranking.scores) * seeds
    active = any(not j.done for j in _jobs())
    c2.button(f"Train the missing feature-extraction runs ({len(todo)} of {count(total, 'run')})",
              key="imagenet_start", type="primary", disabled=active or not todo, on_click=_queue,
              args=(config, choice.dataset, ranking, seeds),
              help="Queues one feature-extraction run per backbone and seed that the run store lacks (the ranking's "
                   "data, split, labels per class and image size); they train in the background.")
    if active:
        c3.button("Cancel the runs", key="imagenet_cancel", on_click=_cancel)
    elif not todo:
        st.caption(f"Every run of this check is in the run store ({count(total, 'run')}).")
    wanted = seed_list(config.seed, seeds)

    def draw() -> bool:
        mine = _jobs()
        running = [j for j in mine if not j.done]
        if running:
            done = sum(j.done for j in mine)
            now = running[0].config
            st.progress(done / len(mine), text=f"{done} of {count(len(mine), 'run')} done · now: {now.backbone}"
                                               f"{'' if now.pretrained else ' (random init)'}, seed {now.seed} · "
                                               f"{views.progress_text(running[0])}")
        table = transfer_table(ranking, store().list_runs(dataset=ranking.data, with_history=False), seeds=wanted)
        views.chart(imagenet_chart.imagenet_transfer, table, key="imagenet_chart")
        st.info(imagenet_chart.conclusion(table))
        _show(table)
        return bool(running)

    views.live(draw, active=active)
