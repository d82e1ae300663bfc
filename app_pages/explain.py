"""Explain: why a run decided. One validation image through the frozen, fine-tuned and from-scratch runs, each with
its class activation map; for text runs, a typed sentence with each word coloured by how much it moved the
prediction."""

import streamlit as st

from tl_core.config import MODES, Mode
from tl_core.presentation import attribution_plots, plots
from tl_core.runs import run_select
from tl_core.runs.export import run_folder
from ui import data_choice, effective_split, messages, picks, services

st.title("Explain")
IMAGES = (
    "**Where did the model look?** A *class activation map* (Grad-CAM, Selvaraju et al. 2017) takes the last "
    "convolutional block, the one closest to the decision, and asks for each of its feature maps how much a small "
    "increase would raise the score of a class; the maps that help are added up, weighted by that gradient. Red "
    "marks the parts of the image that carry the evidence, transparent the parts that do not. A **frozen** model's "
    "map shows what its ImageNet features already pick out, since only the new head learned; a **fine-tuned** "
    "model's map shows where its adapted features look; a model trained **from scratch** on a few images often "
    "looks at the background or at nothing in particular. A map is coarse (the block sees the image as a small "
    "grid), and a model can be right for the wrong reason: the map shows which pixels the decision used, not "
    "whether they are the object.")
TEXTS = (
    "**Which words decided?** *Integrated gradients* (Sundararajan et al. 2017) start from a sentence with every "
    "word blanked out and add the words back a little at a time, adding up how much each one moves the model "
    "towards a class; the shares add up to the whole change. A **frozen** encoder's scores show which words its "
    "pretrained features already tell apart for this task, since only the new head learned; a **fine-tuned** "
    "model's show what it came to weigh; a model trained **from scratch** on a few sentences often leans on "
    "words that merely happened to come with a class in its training set. A word's score is about this sentence "
    "and this model, not a rule about the word.")

store = services.store()
current = data_choice.current_data()
st.markdown(TEXTS if current.kind == "text" else IMAGES)
done = store.list_runs(status="completed", with_history=False)
groups = run_select.mode_groups(done, data=current.config_name) if current.config_name else []
if not groups:
    st.info(f"No finished run on {current.label} yet: train one on the Train page, or run the classroom demo on Home "
            "(it trains the frozen, fine-tuned and from-scratch runs on animals). Explain follows the data chosen on "
            "the Data page.")
    st.stop()


def _group_label(i: int) -> str:
    g = groups[i]
    modes = ", ".join(Mode(m).label for m in g.runs)
    val = effective_split.run_split(next(iter(g.runs.values())))[0] or g.val_per_class
    return f"{g.backbone} · seed {g.seed} · {val} validation/class · {modes}"


def _effective_note(g) -> str:
    """' (the data gives 10)' when the validation setting was capped by the data."""
    val = effective_split.run_split(next(iter(g.runs.values())))[0]
    return f" (the data gives {val})" if val is not None and val != str(g.val_per_class) else ""


picks.keep_choice("explain_group", range(len(groups)), 0)
gi = st.selectbox("Runs to compare (one backbone, one split)", range(len(groups)), key="explain_group",
                  format_func=_group_label, disabled=len(groups) == 1,
                  help="Runs that share a backbone, a seed and the validation size see the same validation images.")
group = groups[gi]
reference = next(iter(group.runs.values()))["config"]

if group.missing:
    from tl_core.runs.explain import train_command

    lines = [f"- **{Mode(m).label}**: on the Data page keep seed {group.seed} and {group.val_per_class} validation "
             f"items per class{_effective_note(group)}, on the Model page choose {group.backbone} and "
             f"{Mode(m).label}, then train; or "
             f"`{train_command(reference, m)}`" for m in group.missing]
    st.info("Not trained yet on this split, so not shown:\n" + "\n".join(lines), icon=":material/info:")


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def load_model(rid: str, path: str):
    """One read-only copy per run, shared by every session; attribution serialises its use (engine lock)."""
    from tl_core.runs import artifacts

    return artifacts.load_run_model(path)


models = {}
for mode, run in group.runs.items():
    for finding in run_select.health_findings(run):
        st.warning(f"{Mode(mode).label} (run {run['run_id']}): {finding['message']}. Its explanation explains "
                   "guesses, not learning.", icon=":material/warning:")
    try:
        models[mode] = load_model(run["run_id"], str(run_folder(store, run["run_id"])))  # no weights: says so
    except Exception as err:  # noqa: BLE001 - one unreadable run must not hide the others
        st.error(f"Cannot load run {run['run_id']}: {messages.error_text(err)}")
if not models:
    st.stop()
family = next(iter(models.values()))[1]["family"]
classes = next(iter(models.values()))[1]["classes"]
PREDICTED = "each model's own prediction"
picks.keep_choice("explain_target", [PREDICTED, *classes], PREDICTED)


def _target(chosen: str):
    """The class to explain: None for each model's own prediction."""
    return None if chosen == PREDICTED else chosen


def _label(mode: str, run: dict) -> str:
    return f"{Mode(mode).label} · {run['run_id']}"


# ---- images: class activation maps ---------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=128)
def cam(rid: str, index: int, target, block, _model, _image):
    from tl_core.engine import attribution

    model, meta = _model
    return attribution.grad_cam(model, _image, meta["classes"], target=target, block=block)


@st.cache_data(show_spinner=False, max_entries=16)
def blocks_of(rid: str, _model):
    from tl_core.engine import attribution

    return attribution.spatial_blocks(_model[0])


def show_images() -> None:
    from tl_core.runs import explain

    try:
        ds = data_choice.load_choice_dataset(current)
        ds, val = explain.validation_set(reference, dataset=ds)
        for mode, (_, meta) in models.items():
            explain.check_classes(meta, ds.classes, group.runs[mode]["run_id"])
    except Exception as err:  # noqa: BLE001 - a clear line, the page stays
        st.error(f"Cannot rebuild the validation images: {messages.error_text(err)}")
        return
    first = next(iter(models))
    try:
        spatial = blocks_of(group.runs[first]["run_id"], models[first])
    except Exception as err:  # noqa: BLE001
        st.error(messages.error_text(err))
        return
    if not spatial:
        st.error(f"{group.backbone} has no convolutional block with a spatial output (a vision transformer works on "
                 "patches as tokens): class activation maps need a convolutional network. Try mobilenet_v2.")
        return
    names = [n for n, _ in spatial]
    sizes = dict(spatial)
    picks.keep_choice("explain_block", names, names[-1])
    c1, c2, c3 = st.columns([1, 1, 1])
    item = c1.number_input(f"Validation image (0 to {len(val) - 1})", min_value=0, max_value=len(val) - 1, step=1,
                           key="explain_item", help="The run chose its epoch on these images but never trained on "
                                                    "them. Use + and - to browse.")
    target = c2.selectbox("Map for", [PREDICTED, *classes], key="explain_target",
                          help="Pick a class to see where each model finds evidence for it, even when it predicts "
                               "another.")
    block = c3.selectbox("Block", names, key="explain_block",
                         format_func=lambda n: f"{n} ({sizes[n][0]}×{sizes[n][1]} grid)"
                         + (" · last" if n == names[-1] else ""),
                         help="The last block is the usual choice: closest to the decision. Earlier blocks see a "
                              "finer grid but less of the class.")
    image, true_class, index = explain.validation_image(ds, val, int(item))
    results, failed = {}, []
    with st.spinner("Computing the maps…"):
        for mode, (model, meta) in models.items():
            try:
                results[mode] = cam(group.runs[mode]["run_id"], index, _target(target), block, (model, meta), image)
            except Exception as err:  # noqa: BLE001
                failed.append(f"{Mode(mode).label}: {messages.error_text(err)}")
    for line in failed:
        st.error(line)
    panels = [(attribution_plots.cam_title(Mode(m).label, results.get(m)), results.get(m)) for m in MODES]
    fig = attribution_plots.cam_panels(panels, image=next(iter(results.values())).image if results else None,
                                       image_title=f"Validation image {int(item)}<br>true class: {true_class}",
                                       missing_text="not trained yet")
    st.plotly_chart(fig, width="stretch", key="explain_cams")
    rows = []
    for mode, r in results.items():
        mark = "right" if r.predicted_class == true_class else "wrong"
        rows.append(f"- **{_label(mode, group.runs[mode])}**: {r.predicted_class} "
                    f"({plots.format_pct(r.probability, 1)}), {mark}" + (
                        "; no positive evidence for that class anywhere: the map is empty" if r.empty else ""))
    st.markdown("\n".join(rows))
    h, w = sizes[block]
    note = ("Each map runs from its own weakest point (transparent) to its strongest (red): compare where the models "
            f"look, not how strongly. The {block} block sees this image as a {h}×{w} grid, smoothed to the image's "
            "pixels.")
    if max(h, w) <= 2:
        note += (" That is coarse: train at a larger image size (Model page, 128 px or more) for a finer map, or "
                 "pick an earlier block.")
    st.caption(note)


# ---- text: token attributions --------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=128)
def tokens(rid: str, text: str, target, _model):
    from tl_core.engine import attribution

    model, meta = _model
    return attribution.token_attributions(model, text, meta["classes"], target=target)


def show_text() -> None:
    c1, c2 = st.columns([3, 1])
    text = c1.text_input("A sentence to explain", "the food was great but the service was slow", key="explain_text",
                         max_chars=500)
    target = c2.selectbox("Attribution for", [PREDICTED, *classes], key="explain_target")
    if not text.strip():
        st.info("Type a sentence to see which words moved each model's prediction.")
        return
    st.caption("Green words push the prediction towards the class, orange words away from it; the stronger the "
               "colour, the larger the push (integrated gradients, Sundararajan et al. 2017: each word's share of "
               "the change in log-probability from an empty sentence to this one). Hover a word for its score.")
    for mode in MODES:
        st.subheader(Mode(mode).label)
        if mode not in models:
            st.caption("not trained yet on this split")
            continue
        run = group.runs[mode]
        try:
            with st.spinner("Computing attributions…"):
                r = tokens(run["run_id"], text, _target(target), models[mode])
        except Exception as err:  # noqa: BLE001
            st.error(messages.error_text(err))
            continue
        about = f" · attribution for **{r.target_class}**" if r.target != r.predicted else ""
        st.markdown(f"Run {run['run_id']}: predicts **{r.predicted_class}** ({plots.format_pct(r.probability, 1)})"
                    f"{about}" + (" · the sentence was cut to the model's length" if r.truncated else ""))
        with st.container(key=f"explain_tokens_{mode}"):
            st.markdown(attribution_plots.token_html(r), unsafe_allow_html=True)
        with st.expander("Scores per token"):
            st.plotly_chart(attribution_plots.token_bars(r), width="stretch", key=f"explain_bars_{mode}")


if family == "vision":
    show_images()
else:
    show_text()
