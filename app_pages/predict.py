"""Predict: try a finished run on new images (files or webcam) or texts, and take the model away as a zip."""

import streamlit as st

from tl_core.inputs import data
from tl_core.presentation import plots
from tl_core.runs import run_select
from ui import data_choice, messages, picks, services, session_id, wording

st.title("Predict")

store, owner = services.store(), session_id.owner()
done = store.list_runs(status="completed", with_history=False)
if not done:
    st.info("No finished runs yet: train one on the Train page (or run the classroom demo on Home).")
    st.stop()

current = data_choice.current_data()
data_name = current.config_name  # None while the Data page has no upload loaded
on_data = [r for r in done if data_name and (r.get("config") or {}).get("data") == data_name]
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
every = c2.toggle("All data sets", key="predict_every", disabled=not on_data,
                  help="Off: only runs trained on the data chosen on the Data page. On: every finished run.")
if not on_data:
    c1.info(f"No finished run on {current.label} yet: showing runs on every data set. Train one on the Train page.")
runs = done if every or not on_data else on_data
runs = [r for r in runs if r["owner"] == owner] + [r for r in runs if r["owner"] != owner]
by_id = {r["run_id"]: r for r in runs}
ids = list(by_id)


def _data(r: dict) -> str:
    return wording.data_label((r.get("config") or {}).get("data"))


def _label(rid: str) -> str:
    r = by_id[rid]
    best = (r.get("summary") or {}).get("best_val_acc")
    who = "yours" if r["owner"] == owner else "class"
    codes = {f["code"] for f in run_select.health_findings(r)}
    flag = "" if not codes else " · at chance" if codes == {"at_chance"} else " · unhealthy"
    return f"{_data(r)} · {plots.run_label(r)} · {plots.format_pct(best)}{flag} · {who}"


# Opens on this session's best healthy run on the current data (the newest run could be one stuck at chance).
default = run_select.best_run(runs, data=None if every else data_name, owner=owner) or ids[0]
picks.keep_choice("predict_run", ids, default)
run_id = c1.selectbox("Finished run (data · model · best validation accuracy; yours first)", ids, key="predict_run",
                      format_func=_label)
run = by_id[run_id]
for finding in run_select.health_findings(run):
    st.warning(f"Run {run_id}: {finding['message']}. Pick a healthier run to see what the model learned.",
               icon=":material/warning:")
folder = store.artifacts_dir(run_id, create=False)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_model(rid: str, path: str):
    """One read-only copy per run, shared by every session (inference only)."""
    from tl_core.runs import artifacts

    return artifacts.load_run_model(path)


try:
    model, meta = load_model(run_id, str(folder))
except Exception as err:
    st.error(f"Cannot load run {run_id}: {messages.error_text(err)}")
    st.stop()

classes = meta["classes"]
st.caption(f"{meta['backbone']} · {len(classes)} classes: {', '.join(classes[:20])}{' …' if len(classes) > 20 else ''}")


def predict(inputs: list) -> list[dict]:
    from tl_core.runs import artifacts

    probs = artifacts.predict_proba(model, inputs)
    return artifacts.top_k(probs, classes, k=min(5, len(classes)))


def show(name: str, top: dict, key: str, image=None) -> None:
    best, p = next(iter(top.items()))
    left, right = st.columns([1, 3])
    with left:
        if image is not None:
            st.image(image, caption=name, width=160)
        else:
            st.write(name)
        st.markdown(f"**{best}** ({plots.format_pct(p, 1)})")
    with right:
        st.plotly_chart(plots.topk_bar(top, k=len(top)), width="stretch", key=key)


if meta["family"] == "vision":
    files = st.file_uploader("Images to classify", type=sorted(e.lstrip(".") for e in data.IMAGE_EXTENSIONS),
                             accept_multiple_files=True, key="predict_files")
    use_camera = st.toggle("Use the webcam", key="use_camera")
    shot = st.camera_input("Take a picture", key="camera") if use_camera else None
    items = [(f.name, f.getvalue()) for f in files or []]
    if shot is not None:
        items.append(("webcam", shot.getvalue()))
    decoded = []
    for name, raw in items:
        try:
            image, _ = data.decode_image(raw)  # full resolution, exactly as the exported predict.py reads it
        except Exception as err:
            st.error(f"{name}: {messages.error_text(err)}")
            continue
        decoded.append((name, image))
    if decoded:
        for i, ((name, image), top) in enumerate(zip(decoded, predict([im for _, im in decoded]))):
            show(name, top, key=f"topk_{i}", image=image)
else:
    text = st.text_area("Texts to classify (one per line)", key="predict_text", height=140,
                        placeholder="what a wonderful day\nthe service was terrible")
    lines = [t.strip() for t in (text or "").splitlines() if t.strip()][:50]
    if lines:
        for i, (line, top) in enumerate(zip(lines, predict(lines))):
            show(line, top, key=f"topk_{i}")

# ---- export -----------------------------------------------------------------------------------------------
st.header("Take the model with you")
try:
    from tl_core.runs import export
except ImportError:  # the export module is optional
    export = None
if export is None:
    st.caption("Export is not available in this installation.")
else:
    st.write("A zip with the weights (safetensors), the preprocessing and class names (JSON), a standalone "
             "`predict.py`" + (" and an ONNX model" if meta["family"] == "vision" else "") + ".")

    def make_zip() -> bytes:  # runs when the button is clicked, not on every rerun
        return export.export_zip(folder, include_onnx=True)

    st.download_button("Download model (zip)", data=make_zip, file_name=f"transfer-lab-{run_id}.zip",
                       mime="application/zip", key="download_model", on_click="ignore", icon=":material/download:")
