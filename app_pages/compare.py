"""Compare: every stored run in one table, curves side by side, the transfer gap and the freeze sweep."""

import streamlit as st

from tl_core.presentation import plots, report
from tl_core.runs import run_select
from ui import effective_split, efficiency, messages, picks, services, session_id, table_cells, views, wording

st.title("Compare")

store, owner = services.store(), session_id.owner()
deleted = messages.take_note("deleted")
if deleted:
    st.success(deleted)

c1, c2 = st.columns(2)
scope = c1.segmented_control("Runs", ["My runs", "Whole class"], key="compare_scope", default="My runs")
scope = scope or "My runs"
runs = store.list_runs(owner=owner if scope == "My runs" else None)
datasets = sorted({(r["config"] or {}).get("data") for r in runs if (r["config"] or {}).get("data")})
ALL = "All datasets"
picks.keep_choice("compare_data", [ALL, *datasets], ALL)
dataset = c2.selectbox("Dataset", [ALL, *datasets], key="compare_data",
                       format_func=lambda d: d if d == ALL else wording.data_label(d),
                       help="One dataset at a time gives a leaderboard: sorted by test accuracy.")
if dataset != ALL:
    runs = [r for r in runs if r["config"].get("data") == dataset]

if not runs:
    st.info("No runs yet" + (" in this session: train one on the Train page, or look at the whole class."
                             if scope == "My runs" else "."))
    st.stop()

table = views.record_summary_rows(runs)
if dataset != ALL:
    table = table.sort_values(["test acc", "val acc"], ascending=False, na_position="last")
table.insert(1, "mine", table["owner"] == owner)
table = table.drop(columns=["owner"])  # owner ids are session keys: never shown
# On screen the table fits a projector: the run id stays pinned at the left with the accuracies beside it, so a
# narrow window still shows them; times are short, the data column as wide as its longest name, an empty cell an
# en dash (the CSV keeps every column, as recorded).
shown = table[["mine", *views.SHOWN_COLUMNS]].assign(data=table["data"].map(wording.data_label),
                                                     when=table["when"].str[11:16])
for col in ("test acc", "val acc"):
    shown[col] = 100 * shown[col]  # shown as "42.5%": one decimal in every row
hidden = [c for c in ("test acc",) if shown[c].isna().all()]
if scope == "My runs":
    hidden.append("mine")  # every row is
pct = dict(format="%.1f%%", width=70)
shown, columns = table_cells.dash_missing(shown.drop(columns=hidden), {
    "run": st.column_config.TextColumn(width=110, pinned=True),
    "mine": st.column_config.CheckboxColumn(width=45),
    "test acc": st.column_config.NumberColumn("test acc", help="accuracy on the held-out test split, at the "
                                              "epoch validation chose: the number a run reports", **pct),
    "val acc": st.column_config.NumberColumn("val acc", help="the best validation accuracy, which chose the "
                                             "epoch (a little optimistic); empty: no epoch finished", **pct),
    "health": st.column_config.TextColumn(width=80, help="ok, or why this run is not a result (one class "
                                          "predicted, stuck at chance, loss not falling, diverged)"),
    "mode": st.column_config.TextColumn(width=70),
    "k": st.column_config.NumberColumn(width=35, help="freeze depth: blocks kept frozen"),
    "labels/class": st.column_config.NumberColumn("labels", width=50,
                                                  help="labels per class (all: every training item)"),
    "seed": st.column_config.NumberColumn(width=40, help="the split and the initial weights"),
    "data": st.column_config.TextColumn(width=table_cells.text_width(shown["data"], least=80)),
    "backbone": st.column_config.TextColumn(width=110),
    "seconds": st.column_config.NumberColumn("s", format="%.1f", width=45, help="training seconds"),
    "status": st.column_config.TextColumn(width=80),
    "when": st.column_config.TextColumn(width=50, help="hour:minute (UTC) the run started"),
}, empty={"labels/class": "all"})
st.dataframe(shown, hide_index=True, width="stretch", key="runs_table", column_config=columns)
st.download_button("Download table (CSV)", table.to_csv(index=False).encode(), file_name="transfer-lab-runs.csv",
                   mime="text/csv", key="download_csv", on_click="ignore")

by_id = {r["run_id"]: r for r in runs}
ids = list(table["run"])

# ---- overlay ----------------------------------------------------------------------------------------------
st.header("Learning curves")
# First: the completed runs of the newest comparison (same data, split and backbone), never a cancelled one.
picks.keep_picks("compare_runs", by_id, lambda: run_select.default_overlay(runs))
picked = st.multiselect("Runs to overlay", ids, key="compare_runs", format_func=lambda i: plots.run_label(by_id[i]))
metric = st.radio("Metric", ["val_acc", "train_acc", "val_loss", "train_loss"], horizontal=True,
                  key="compare_metric", format_func=lambda m: m.replace("_", " ").replace("acc", "accuracy"))
st.plotly_chart(plots.overlay_curves([by_id[i] for i in picked], metric), width="stretch", key="compare_overlay")

# ---- transfer gap and freeze sweep ------------------------------------------------------------------------
st.header("Transfer gap")
groups = sorted({(r["config"].get("data"), r["config"].get("backbone")) for r in runs if r["status"] == "completed"})
if not groups:
    st.info("No completed runs yet.")
else:
    picks.keep_choice("gap_group", groups, groups[0])
    group = st.selectbox("Data and backbone", groups, key="gap_group", format_func=lambda g: f"{wording.data_label(g[0])} · {g[1]}")
    group_runs = [r for r in runs if (r["config"].get("data"), r["config"].get("backbone")) == group]
    if split := effective_split.split_words([r for r in group_runs if r["status"] == "completed"]):
        st.caption(f"Scored on {split}.")
    st.plotly_chart(plots.transfer_gap(group_runs), width="stretch", key="compare_gap")
    reading = report.read_gap(group_runs)
    (st.success if reading.ok else st.warning)(reading.text)
    if reading.detail:
        st.caption(reading.detail)
    depths = {r["config"].get("freeze_depth") for r in group_runs
              if r["status"] == "completed" and r["config"].get("mode") == "finetune"}
    if len(depths) > 1:
        st.subheader("Freeze-depth sweep")
        st.plotly_chart(plots.freeze_sweep(group_runs), width="stretch", key="compare_sweep")
    else:
        st.caption("Fine-tune at several freeze depths to see the freeze sweep (Yosinski et al. 2014).")

# ---- when does transfer pay? -----------------------------------------------------------------------------
st.header("When does transfer pay?")
st.write("Accuracy against the number of labels per class, for feature extraction, fine-tuning and a fair "
         "from-scratch baseline (trained to convergence), each over several seeds. With few labels pretrained "
         "features win by far; with many, a network trained from scratch can catch up, sooner when the data is far "
         "from what the backbone was trained on. One click trains what is missing in the background; finished "
         "runs of the whole class with the same settings are reused.")
efficiency.render()

# ---- delete ------------------------------------------------------------------------------------------------
st.header("Delete runs")
mine = [i for i in ids if by_id[i]["owner"] == owner and by_id[i]["status"] != "running"]
if not mine:
    st.caption("You can delete only your own finished runs.")
else:
    doomed = st.multiselect("Your runs to delete", mine, key="delete_runs",
                            format_func=lambda i: plots.run_label(by_id[i]))

    def delete_selected() -> None:
        gone = [rid for rid in picks.take_picks("delete_runs") if store.delete_run(rid, owner=owner)]
        messages.leave_note("deleted", f"Deleted {wording.count(len(gone), 'run')}.")

    st.button("Delete selected runs", key="delete_runs_btn", on_click=delete_selected, disabled=not doomed)
