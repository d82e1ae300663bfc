"""Data: a built-in set or an upload, what was loaded (and what was skipped), samples, balance and the split."""

import numpy as np
import pandas as pd
import streamlit as st

from tl_core.inputs import data
from tl_core.presentation import plots
from ui import data_choice, effective_split, messages, services, settings, uploads, wording
from ui.data_choice import UPLOAD

st.title("Data")

builtins = services.builtins_info()
options = [b["name"] for b in builtins] + [UPLOAD]
descriptions = {b["name"]: b for b in builtins}


def _option_label(name: str) -> str:
    if name == UPLOAD:
        return ":material/upload_file: Upload your own (zip of class folders, or CSV/TSV of texts)"
    b = descriptions[name]
    icon = ":material/image:" if b["kind"] == "image" else ":material/chat:"
    return (f"{icon} {name.split(':', 1)[1]} — {wording.count(len(b['classes']), 'class', 'classes')}, "
            f"{wording.count(b['n_items'], b['kind'])}")


shown = settings.seed_widget("data_source", valid=lambda v: v in options)
source = st.radio("Dataset", options, index=options.index(shown), key="data_source", format_func=_option_label)
settings.keep("data_source")

if source != UPLOAD:
    st.caption(descriptions[source]["description"])


# ---- upload ---------------------------------------------------------------------------------------
def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB"


if source == UPLOAD:
    uploads.restore_upload()  # after a refresh: the session's upload, kept on the server
    st.markdown("A **zip** with one folder of images per class (`cat/1.jpg`, `dog/2.png`, …; a `train/` + `val/` "
                "layout is used as a fixed validation set), or a **CSV/TSV** with a text column and a label column.")
    up = st.file_uploader("Upload a zip or CSV/TSV", type=["zip", "csv", "tsv"], key="upload")
    if up is not None:
        file_name, file_bytes = up.name, up.getvalue()
    else:  # nothing in the uploader (a refresh, another page): the file this session loaded, if any
        kept = uploads.loaded()
        file_name, file_bytes = (kept.name, kept.raw) if kept else (None, None)
        if file_bytes is not None:
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            c1.info(f"Using **{file_name}** ({_size(len(file_bytes))}), kept for this session: it is still here after "
                    "a refresh and at this page's URL on another computer. Upload another file to replace it.",
                    icon=":material/inventory_2:")
            c2.button("Remove", key="clear_upload", on_click=uploads.clear_upload, icon=":material/delete:",
                      help="Forget this file (here and on the server) and go back to choosing one.")
    if uploads.restore_problem():
        st.warning(uploads.restore_problem())
    is_csv = file_name is not None and file_name.lower().endswith((".csv", ".tsv"))
    if is_csv:
        c1, c2 = st.columns(2)
        c1.text_input("Text column (optional)", value=settings.initial("text_column"), key="text_column",
                      help="Leave empty to detect it.")
        c2.text_input("Label column (optional)", value=settings.initial("label_column"), key="label_column",
                      help="Leave empty to detect it.")
        settings.keep("text_column", "label_column")
    if file_bytes is not None:
        key = uploads.upload_key(file_bytes, settings.get("text_column") if is_csv else "",
                                 settings.get("label_column") if is_csv else "")
        with st.spinner(f"Reading {file_name}…"):
            uploads.try_load(file_name, file_bytes, key)
        failure = uploads.failure(key)
        if failure is not None:
            st.error(failure)  # the one error: about this file
            if uploads.loaded() is not None:
                st.info(f"Still using the previously loaded dataset: {uploads.loaded().name}.")

choice = data_choice.current_data()
if not choice.ready:
    st.info("Upload a file to see its report, or pick a built-in dataset.")
    st.stop()

try:
    ds = data_choice.load_choice_dataset(choice)
except Exception as err:
    st.error(messages.error_text(err))
    st.stop()

# ---- the report -------------------------------------------------------------------------------------
rep = ds.report
st.header(f"Report: {choice.label}")
counts = rep.counts
c1, c2, c3, c4 = st.columns(4)
c1.metric("Classes", len(ds.classes))
c2.metric("Items", f"{len(ds):,}")
c3.metric("Skipped", len(rep.skipped))
if rep.image_sizes:
    mc = rep.image_sizes["most_common"]
    c4.metric("Typical image size", f"{mc[0]}×{mc[1]}",
              help=f"smallest {rep.image_sizes['min'][0]}×{rep.image_sizes['min'][1]}, "
                   f"largest {rep.image_sizes['max'][0]}×{rep.image_sizes['max'][1]} (original sizes)")
else:
    c4.metric("Kind", "text")
st.markdown(f"**{len(ds.classes)} classes:** " + ", ".join(f"{c} ({n})" for c, n in counts.items()))
for note in rep.notes:
    st.caption(f":material/info: {note}")
if rep.skipped:
    with st.expander(f"{wording.count(len(rep.skipped), 'skipped item')} and why", expanded=len(rep.skipped) <= 10):
        st.dataframe(pd.DataFrame(rep.skipped, columns=["item", "reason"]), hide_index=True, width="stretch",
                     key="skipped_table")

left, right = st.columns([3, 2])
with left:
    st.subheader("Samples")
    samples = data.sample_indices(ds, per_class=4, seed=0)
    if ds.kind == "image":
        for cls, idx in list(samples.items())[:12]:
            row = st.columns([1, 4])
            row[0].markdown(f"**{cls}**")
            row[1].image([np.asarray(ds.images[i]) for i in idx], width=72)
        if len(samples) > 12:
            st.caption(f"… and {len(samples) - 12} more classes")
    else:
        rows = [{"class": cls, "text": ds.texts[i]} for cls, idx in samples.items() for i in idx[:3]]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="sample_texts")
with right:
    unit = "images" if ds.kind == "image" else "texts"
    st.plotly_chart(plots.class_balance(counts, f"{unit.capitalize()} per class", unit=unit),
                    width="stretch", key="class_balance")

# ---- the split ----------------------------------------------------------------------------------------
st.header("Split")
st.write("Validation and test items are held out and never trained on. Validation picks each run's best epoch; "
         "test, untouched until then, gives the accuracy the run reports, so no number is chosen on the items it "
         "is measured on. The same seed gives the same split in every run, so runs with different settings are "
         "scored on exactly the same items. Small classes still split: validation and test each take at most a "
         "third of a class.")
c1, c2, c3, c4 = st.columns(4)  # drawn only once data is loaded: hence value=initial(), not seed_widget
c1.number_input("Labels per class (0 = all)", min_value=0, max_value=100_000, step=5, key="labels_per_class",
                value=settings.initial("labels_per_class"),
                help="Train on only this many examples per class: transfer learning shines with few labels.")
c2.number_input("Validation items per class", min_value=1, max_value=10_000, step=5, key="val_per_class",
                value=settings.initial("val_per_class"),
                help="Held out to choose the best epoch (at most a third of each class).")
c3.number_input("Test items per class", min_value=1, max_value=10_000, step=5, key="test_per_class",
                value=settings.initial("test_per_class"),
                help="Held out to report accuracy, once, at the chosen epoch (at most a third of each class).")
c4.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="seed", value=settings.initial("seed"),
                help="Same seed, same split and same initial head; another seed, another split and start.")
settings.keep("labels_per_class", "val_per_class", "test_per_class", "seed")

try:
    split = data_choice.split_of(ds)
except Exception as err:
    st.error(f"{choice.label} cannot be split: {messages.error_text(err)}")
else:
    train_counts = np.bincount(ds.labels[split.train], minlength=len(ds.classes))
    val_counts = np.bincount(ds.labels[split.val], minlength=len(ds.classes))
    test_counts = np.bincount(ds.labels[split.test], minlength=len(ds.classes))
    # What the data allowed, right under each input: validation and test take at most a third of a class.
    for column, asked, counts in ((c1, data_choice.labels_per_class(), train_counts),
                                  (c2, int(settings.get("val_per_class")), val_counts),
                                  (c3, int(settings.get("test_per_class")), test_counts)):
        if note := effective_split.capped_note(asked, counts):
            column.caption(note)
    st.markdown(f"**Split: {len(split.train):,} training, {len(split.val):,} validation, {len(split.test):,} test "
                "items.**")
    st.dataframe(pd.DataFrame({"class": ds.classes, "train": train_counts, "validation": val_counts,
                               "test": test_counts}), hide_index=True, key="split_table")
    small = [c for c, n in zip(ds.classes, test_counts) if n < 5]
    if small:
        st.warning(f"Few test items for {', '.join(small[:5])}: accuracy will be noisy; run several seeds.")
