"""The "Which backbone?" view on the Model page: every available backbone scored on the current data before any
training, in the background (tl_core.runs.rank_jobs), then checked against the test accuracy of feature-extraction
runs (tl_core.runs.rank_agreement) once three of them exist: one click trains the missing ones."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from tl_core.config import Mode
from tl_core.engine.ranking import frozen_config
from tl_core.runs.rank_agreement import MIN_BACKBONES, agreement, unmeasured
from tl_core.runs.rank_jobs import RankJob, RankJobs

from ui import settings, views
from ui.data_choice import current_data
from ui.run_config import config_or_problem
from ui.services import at_exit, manager, store
from ui.session_id import owner
from ui.table_cells import dash_missing
from ui.wording import count, data_label

CHECK_LABEL = "rank_check"  # the job manager's label of the runs that check a ranking
NOTE = (
    "Training every backbone to find the best one is the slow way. These scores read only the frozen features "
    "each pretrained backbone gives your training items, and their labels, in seconds. **LogME** (You et al., "
    "ICML 2021) is the evidence of a Bayesian linear model on those features: how likely the labels are once the "
    "model's weight prior and noise level are set to their best, per item. The **H-score**, regularised as in "
    "Ibrahim et al. (ECML-PKDD 2022), measures how far the class means lie apart relative to the spread of the "
    "features, with a shrunk covariance so it stays defined when there are more features than items. Higher ranks "
    "higher on both. They only rank models **on the same data**: a score from another data set, or another label "
    "budget, is not comparable, and neither is an accuracy."
)


@st.cache_resource(show_spinner=False)
def rank_jobs() -> RankJobs:
    """One ranking worker per server, shared by every session (each reads only its own jobs)."""
    jobs = RankJobs()
    at_exit(jobs.cancel_all)  # stopping the server cancels a ranking instead of waiting for it
    return jobs


def settings_key(config, include_random: bool, per_class: int) -> str:
    """The settings a ranking depends on: a ranking made on other ones is not shown as this one."""
    c = config.to_dict()
    fields = ("data", "labels_per_class", "val_per_class", "test_per_class", "seed", "image_size", "max_length",
              "text_column", "label_column")
    return json.dumps({**{f: c[f] for f in fields}, "include_random": include_random, "per_class": per_class})


def failed_elsewhere(job: RankJob | None, config) -> bool:
    """Whether `job` failed with settings other than `config`'s: its error speaks for the settings it ran with
    (a recipe or a mode among them, which the ranking's key leaves out), so it is not shown for these."""
    return job is not None and job.state == "failed" and job.config.to_dict() != config.to_dict()


def _init(pretrained: bool) -> str:
    return "pretrained" if pretrained else "random init"


def _check_jobs():
    return [j for j in manager().jobs(owner()) if j.label == CHECK_LABEL]


def _start(config, dataset, include_random: bool, per_class: int, key: str) -> None:
    rank_jobs().submit(config, owner=owner(), dataset=dataset, include_random=include_random,
                       max_per_class=per_class, key=key)


def _cancel(job_id: str) -> None:
    rank_jobs().cancel(job_id)


def _train_checks(config, dataset, ranking) -> None:
    """Queue a feature-extraction run for every ranked backbone that has none on these settings."""
    records = store().list_runs(dataset=ranking.data, with_history=False)
    for s in unmeasured(ranking, records):
        check = frozen_config(config, s.name, s.pretrained, config.labels_per_class)
        manager().submit(check, owner=owner(), dataset=dataset, label=CHECK_LABEL)


def score_table(rows: list[dict], measured: dict | None = None) -> pd.DataFrame:
    """Best first, by LogME; with `measured` ((name, pretrained) -> Measured dict) the runs' test accuracy beside,
    once there is one."""
    rows = sorted(rows, key=lambda r: (r["logme"], r["hscore"]), reverse=True)
    table = pd.DataFrame({
        "#": range(1, len(rows) + 1),
        "backbone": [r["name"] for r in rows],
        "weights": [_init(r["pretrained"]) for r in rows],
        "LogME": [r["logme"] for r in rows],
        "H-score": [r["hscore"] for r in rows],
        "seconds": [r["seconds"] for r in rows],
    })
    found = [(measured or {}).get((r["name"], r["pretrained"])) or {} for r in rows]
    if any(m.get("runs") for m in found):  # the measured columns once some backbone has a run
        table["test acc"] = pd.Series([100 * m["accuracy"] if m.get("accuracy") is not None else None
                                       for m in found], dtype=float)  # empty, not "None", where no run is
        table["runs"] = [m.get("runs", 0) for m in found]
    return table


def _show_table(table: pd.DataFrame, mode: str | None) -> None:
    measured_by = Mode(mode).label.lower() if mode else "feature extraction"
    table, columns = dash_missing(table, {
        "#": st.column_config.NumberColumn(width=35),
        "LogME": st.column_config.NumberColumn(format="%.3f", help="LogME (You et al. 2021): higher ranks higher"),
        "H-score": st.column_config.NumberColumn(format="%.2f", help="regularised H-score (Ibrahim et al. 2022): "
                                                 "higher ranks higher"),
        "seconds": st.column_config.NumberColumn(format="%.1f", help="features and scores of this backbone"),
        "test acc": st.column_config.NumberColumn(format="%.1f%%", help=f"measured: mean test accuracy of the "
                                                  f"{measured_by} runs with these settings (over seeds)"),
        "runs": st.column_config.NumberColumn(width=45, help="healthy runs averaged in the test accuracy"),
    })
    st.dataframe(table, hide_index=True, width="stretch", key="rank_table", column_config=columns)


def _progress_text(job: RankJob) -> str:
    if job.state == "queued":
        return "queued: another ranking runs first"
    if not job.total:
        return job.messages[-1] if job.messages else "loading the data…"
    part = f" · {job.done_items} of {count(job.items, 'item')}" if job.items and len(job.scored) < job.index else ""
    return f"backbone {min(job.index, job.total)} of {job.total}: {job.current}{part}"


def _agreement_text(check: dict) -> tuple[bool, str]:
    n, tau, h = check["n"], check["logme"]["kendall_tau"], check["hscore"]["kendall_tau"]
    if tau is None:
        return False, (f"Once feature-extraction runs exist for at least {MIN_BACKBONES} of these backbones on "
                       f"these settings, the rank correlation between the scores and their measured test accuracy "
                       f"shows here ({n} so far).")
    label = Mode(check["mode"]).label.lower()
    return True, (f"Kendall's tau between LogME and the measured {label} test accuracy over {count(n, 'backbone')}: "
                  f"**{tau:+.2f}**" + (f" (H-score: {h:+.2f})" if h is not None else "") +
                  ". +1: the scores ordered the backbones exactly as training did; 0: no better than chance; "
                  "−1: reversed.")


def render() -> None:
    with st.container(key="rank_view"):
        _render()


def _render() -> None:
    st.subheader("Which backbone? Rank them before training")
    st.write(NOTE)
    choice = current_data()
    config, problem = config_or_problem(choice)
    if problem:
        st.info(problem)
        return
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    vision = choice.kind == "image"
    include_random = vision and c1.checkbox(
        "Add random-init copies", key="rank_random", value=settings.initial("rank_random"),
        help="The same architectures with random weights: they should rank below their pretrained selves.")
    per_class = int(c2.number_input(
        "Training items per class scored", min_value=0, max_value=5000, step=25, key="rank_per_class",
        value=settings.initial("rank_per_class"),
        help="The first items of each class's training pool (those a run with that many labels trains on); "
             "0 = every training item. A hundred rank as well as the full set does on the built-in data."))
    settings.keep("rank_random", "rank_per_class")
    key = settings_key(config, include_random, per_class)
    jobs = rank_jobs()
    job = jobs.latest(owner(), key)
    stale = failed_elsewhere(job, config)
    if stale:
        job = None
    ranking_active = job is not None and not job.done
    c3.button("Rank backbones", key="rank_start", type="primary", disabled=ranking_active, on_click=_start,
              args=(config, choice.dataset, include_random, per_class, key),
              help="Scores every backbone whose weights are on this machine, in the background.")
    if job is None:
        st.caption(f"The last ranking failed with other settings: press *Rank backbones* to rank with these."
                   if stale else f"Nothing ranked yet on {choice.label} with these settings.")
        return
    checks_active = any(not j.done for j in _check_jobs())

    def draw() -> bool:
        snap = jobs.snapshot(job.job_id)
        checks = _check_jobs()
        running_checks = [j for j in checks if not j.done]
        if not snap.done:
            st.progress(snap.progress, text=_progress_text(snap))
            st.button("Cancel the ranking", key="rank_cancel", on_click=_cancel, args=(snap.job_id,))
            if snap.scored:
                _show_table(score_table(snap.scored), None)
            return True
        if snap.state == "failed":
            st.error(f"The ranking failed: {snap.error}")
            return bool(running_checks)
        ranking = snap.ranking
        records = store().list_runs(dataset=ranking.data, with_history=False)
        check = agreement(ranking, records)
        measured = {(m["name"], m["pretrained"]): m for m in check["backbones"]}
        rows = [s.to_dict() for s in ranking.scores]
        status = "cancelled: the backbones scored before it" if snap.state == "cancelled" else "ranked"
        st.caption(f"{data_label(ranking.data)} · {count(len(rows), 'backbone')} {status} on "
                   f"{count(ranking.items, 'training item')} in "
                   f"{views.fmt_seconds(ranking.seconds)}"
                   + (f" · not scored (weights not on this machine): {', '.join(ranking.skipped)}"
                      if ranking.skipped else ""))
        _show_table(score_table(rows, measured), check["mode"])
        ok, text = _agreement_text(check)
        (st.success if ok else st.caption)(text)
        sick = [f"{m['name']} ({_init(m['pretrained'])})" for m in check["backbones"] if m["unhealthy"]]
        if sick:
            st.caption(f"Left out as not results: the runs of {', '.join(sick)} were flagged unhealthy (one class "
                       "predicted, or stuck at chance); see the Compare page.")
        todo = unmeasured(ranking, records)
        if running_checks and not checks_active:  # just queued from this fragment: poll from the page's next run
            st.rerun()
        if running_checks:
            done = sum(j.done for j in checks)
            st.progress(done / len(checks), text=f"checking the ranking: {done} of {len(checks)} feature-extraction "
                                                 f"runs done · now: {running_checks[0].config.backbone} · "
                                                 f"{views.progress_text(running_checks[0])}")
        elif todo:
            st.button(f"Train a feature-extraction run of each ({len(todo)} missing) to check the ranking",
                      key="rank_check_start", on_click=_train_checks, args=(config, choice.dataset, ranking),
                      help="Queues the missing runs (the same data, split, labels per class and image size); "
                           "they train in the background and appear on the Compare page too.")
        return bool(running_checks)

    views.live(draw, active=ranking_active or checks_active)
