"""Inspect: look inside a finished run. What its features learned (before vs after training) and where it fails.

The page only picks the run and lays out what tl_core.runs.inspection computes; the results are cached per run
(shared read-only by every session), so a second visit or another student's look at the same run is instant.
"""

import streamlit as st

from tl_core.presentation import inspect_plots, plots
from tl_core.presentation.inspect_report import (gain_deltas, item_caption, read_separation, space_titles,
                                                 two_decimals)
from tl_core.runs import inspection, run_select
from ui import data_choice, messages, picks, services, session_id, wording

st.title("Inspect")

store, owner = services.store(), session_id.owner()
records = store.list_runs(with_history=False)
# Every finished run of the class, and this session's own runs whatever their state: picking a cancelled one
# says why it cannot be inspected.
runs = [r for r in records if r["status"] == "completed" or r["owner"] == owner]
runs = [r for r in runs if r["owner"] == owner] + [r for r in runs if r["owner"] != owner]
asked = st.query_params.get("run")  # Inspect?run=ID opens on that run
if asked and asked not in {r["run_id"] for r in runs}:
    st.error(f"Unknown run '{asked}': it is not a run of this session or a finished run of the class. "
             "Pick one below.", icon=":material/error:")
    asked = None
if not runs:
    st.info("No runs yet: train one on the Train page (or run the classroom demo on Home), then look inside it here.")
    st.stop()

current = data_choice.current_data()
data_name = current.config_name
on_data = [r for r in runs if data_name and (r.get("config") or {}).get("data") == data_name]
if asked and picks.first_time("inspect_asked_run"):  # the link opens its run once; the pickers decide after
    picks.choose("inspect_run", asked)
    picks.choose("inspect_every", asked not in {r["run_id"] for r in on_data})
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
every = c2.toggle("All data sets", key="inspect_every", disabled=not on_data,
                  help="Off: only runs trained on the data chosen on the Data page. On: every run.")
if not on_data:
    c1.info(f"No run on {current.label} yet: showing runs on every data set.")
shown = runs if every or not on_data else on_data
by_id = {r["run_id"]: r for r in shown}
ids = list(by_id)


def _label(rid: str) -> str:
    r = by_id[rid]
    data = wording.data_label((r.get("config") or {}).get("data"))
    who = "yours" if r["owner"] == owner else "class"
    codes = {f["code"] for f in run_select.health_findings(r)} if r["status"] == "completed" else set()
    flag = "" if not codes else " · at chance" if codes == {"at_chance"} else " · unhealthy"
    return (f"{data} · {plots.run_label(r)} · {plots.format_pct(run_select.best_accuracy(r))}{flag} · {who}")


picks.keep_choice("inspect_run", ids,
                  lambda: run_select.best_run(shown, data=None if every else data_name, owner=owner) or ids[0])
run_id = c1.selectbox("Run (data · model · best validation accuracy; yours first)", ids, key="inspect_run",
                      format_func=_label)
run = by_id[run_id]


@st.cache_resource(show_spinner="Loading the run's model and data…", max_entries=4)
def _items(rid: str, data: str, store_path: str, _dataset):
    """The run's model and its validation items (the test items come from the same object)."""
    return inspection.open_run(services.store(), rid, split="val", dataset=_dataset)


@st.cache_resource(show_spinner="Computing the features before and after training…", max_entries=8)
def _embeddings(rid: str, data: str, _items):
    return inspection.embeddings(_items)


@st.cache_resource(show_spinner="Drawing the map…", max_entries=16)
def _maps(rid: str, data: str, method: str, _embeddings):
    return _embeddings.maps(method)


@st.cache_resource(show_spinner="Predicting every test item…", max_entries=8)
def _predictions(rid: str, data: str, _items):
    return inspection.predictions(_items.on("test"))


run_data = str((run.get("config") or {}).get("data") or "")
upload = current.dataset if current.dataset is not None and run_data == data_name else None
try:
    items = _items(run_id, run_data, str(store.path), upload)
except Exception as err:  # noqa: BLE001 - a user's problem is one line; anything else is shown, not raised
    st.error(f"Cannot inspect run {run_id}: {messages.error_text(err)}", icon=":material/error:")
    st.stop()
for finding in run_select.health_findings(run):
    st.warning(f"Run {run_id}: {finding['message']}. What it learned is not a result; pick a healthier run.",
               icon=":material/warning:")
unit = "images" if items.kind == "image" else "texts"


def gallery(positions, captions: list[str], key: str, rows: list[dict] | None = None, source=items) -> None:
    """Images in a grid with their captions, or texts in a table."""
    if source.kind == "image":
        st.image(source.images(positions), caption=captions, width=112)
    else:
        texts = source.texts(positions)
        table = [{"text": t, "true": r["true"], "predicted": r["predicted"],
                  "confidence": r.get("confidence"), "p(true)": r.get("p_true")}
                 for t, r in zip(texts, rows or [{"true": c, "predicted": ""} for c in captions])]
        st.dataframe(table, hide_index=True, width="stretch", key=key, column_config={
            "text": st.column_config.TextColumn(width="large"),
            "confidence": st.column_config.NumberColumn(format="percent"),
            "p(true)": st.column_config.NumberColumn(format="percent",
                                                     help="the probability the model gave the true class")})


def what_it_learned() -> None:
    st.header("What the model learned")
    cfg = items.config
    before_title, _ = space_titles(cfg.mode, inspection.starts_pretrained(cfg))
    st.write(
        f"Before the head decides, the backbone turns each {unit[:-1]} into a long list of numbers: its features. "
        "Items the network finds alike get similar features. Here every validation item is one point, placed by "
        "squashing its features down to two dimensions: PCA keeps the directions along which the features vary most; "
        "t-SNE keeps each point's nearest neighbours near it, but the distances between groups mean little. Left: the "
        f"features the run started from ({before_title.split(' (')[0].lower()}); right: the features after training. "
        "When training teaches the network the task, points of one colour gather into their own group. The numbers "
        "are measured in the full feature space, not on the picture: **k-NN accuracy** is how often an item's 5 "
        "nearest neighbours vote for its true class (cross-validated), and the **silhouette score** (from −1 to 1) is "
        "higher when each class sits apart from the others.")
    method = st.segmented_control("Map", ["pca", "tsne"], key="inspect_method", default="pca",
                                  format_func=inspect_plots.METHOD_NAMES.get) or "pca"
    try:
        emb = _embeddings(run_id, run_data, items)
        result = emb.to_dict(_maps(run_id, run_data, method, emb))
    except Exception as err:  # noqa: BLE001
        st.error(f"Cannot compute the features of run {run_id}: {messages.error_text(err)}")
        return
    reading = read_separation(result)
    knn_delta, sil_delta = gain_deltas(result)
    m1, m2, m3, m4 = st.columns(4)
    b, a = result["before"], result["after"]
    m1.metric("k-NN accuracy before", plots.format_pct(b["knn_acc"], 1),
              help=f"{b['k']} nearest neighbours (cosine), {b['folds']}-fold cross-validation repeated "
                   f"{b['repeats']} times over the {result['n_items']} validation items")
    m2.metric("k-NN accuracy after", plots.format_pct(a["knn_acc"], 1),
              delta=knn_delta)
    m3.metric("Silhouette before", two_decimals(b["silhouette"]))
    m4.metric("Silhouette after", two_decimals(a["silhouette"]),
              delta=sil_delta)
    (st.success if reading.ok and result["direction"] == "more" else st.info)(reading.text)
    fig = inspect_plots.embedding_maps(result)
    event = st.plotly_chart(fig, width="stretch", key=f"inspect_map_{run_id}_{method}", on_select="rerun",
                            selection_mode=("points", "box", "lasso"))
    picked = [p for p in inspect_plots.selected_positions(event.selection.points if event else [], fig)
              if p < len(emb.labels)][:30]
    if not picked:
        st.caption(f"Click a point, or drag a box or a lasso around several, to see their {unit} here. "
                   "Double-click to clear.")
        return
    with st.container(key="inspect_selected"):
        st.subheader(f"{len(picked)} selected item{'s' if len(picked) > 1 else ''}")
        rows = [{"true": emb.classes[emb.labels[p]], "predicted": emb.classes[emb.predicted[p]]} for p in picked]
        gallery(picked, [f"true {r['true']} · predicted {r['predicted']}" for r in rows], key="inspect_map_items",
                rows=rows)


def where_it_fails() -> None:
    st.header("Where it fails")
    st.write(
        "Accuracy says how often the model is wrong, not where. The confusion matrix counts the test items (the ones "
        "the run's accuracy is measured on) by their true class (rows) and the class the model predicted (columns): "
        "the diagonal is right, every other cell is a mistake. **Click a cell** to see its items and the "
        "probabilities the model gave them. The **most confident mistakes** are the items the model was surest about "
        "and still got wrong: often a wrong label, an ambiguous item, or a shortcut the model learned (a background, "
        "a colour). They are the first place to look when improving the data.")
    try:
        preds = _predictions(run_id, run_data, items)
    except Exception as err:  # noqa: BLE001
        st.error(f"Cannot predict the test items of run {run_id}: {messages.error_text(err)}")
        return
    test_items = items.on("test")
    left, right = st.columns([3, 2])
    with left:
        cm_fig = inspect_plots.clickable_confusion(preds.confusion_matrix(), preds.classes, split="test", unit=unit)
        cm_event = st.plotly_chart(cm_fig, width="stretch", key=f"inspect_cm_{run_id}", on_select="rerun",
                                   selection_mode="points")
    with right, st.container(key="inspect_cell"):
        cell = inspect_plots.selected_cell(cm_event.selection.points if cm_event else [], cm_fig)
        if cell is None:
            st.info("Click a cell of the confusion matrix to see its items here.", icon=":material/touch_app:")
        else:
            t, p = cell
            positions = preds.cell(t, p)
            verb = "correctly predicted as" if t == p else "predicted as"
            st.subheader(f"{wording.count(len(positions), unit[:-1])} of {preds.classes[t]} {verb} {preds.classes[p]}")
            if not len(positions):
                st.caption("None: this cell is empty.")
            else:
                rows = [preds.row(int(i)) for i in positions[:30]]
                gallery(positions[:30], [item_caption(r) for r in rows], key="inspect_cell_items", rows=rows,
                        source=test_items)
                if len(positions) > 30:
                    st.caption(f"The 30 most confident of {len(positions)}.")

    st.subheader("Most confident mistakes")
    wrong = preds.mistakes()
    if not len(wrong):
        st.success(f"No mistakes: every test {unit[:-1]} is right.")
        return
    show = wrong[:12]
    rows = [preds.row(int(i)) for i in show]
    st.caption(f"{len(wrong)} of {wording.count(len(preds.labels), 'test ' + unit[:-1])} "
               f"{'is' if len(wrong) == 1 else 'are'} wrong ({plots.format_pct(preds.accuracy, 1)} "
               f"right); the {len(show)} the model was surest about, surest first. Under each: the true class, then "
               "the model's top two probabilities.")
    with st.container(key="inspect_mistakes_box"):
        gallery(show, [item_caption(r) for r in rows], key="inspect_mistakes", rows=rows, source=test_items)


with st.container(key="inspect_learned"):
    what_it_learned()
with st.container(key="inspect_fails"):
    where_it_fails()
