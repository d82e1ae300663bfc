"""The Inspect page's figures and words, from hand-made data: no model, no UI."""

import plotly.graph_objects as go

from tl_core.presentation import inspect_plots
from tl_core.presentation.inspect_report import item_caption, read_separation, space_titles

CLASSES = ["cat", "dog", "fox"]


def _result(**over) -> dict:
    """The shape of `Embeddings.to_dict(maps)`: 6 items, two of them misclassified."""
    truth = ["cat", "cat", "dog", "dog", "fox", "fox"]
    pred = ["cat", "dog", "dog", "dog", "fox", "cat"]
    items = [{"index": 100 + i, "true": t, "predicted": p, "before": [float(i), 0.0], "after": [0.0, float(i)]}
             for i, (t, p) in enumerate(zip(truth, pred))]
    sep = {"knn_acc": 0.5, "knn_std": 0.1, "silhouette": 0.05, "k": 5, "folds": 2, "repeats": 3}
    out = {"run_id": "r1", "split": "val", "mode": "finetune", "pretrained_start": True, "classes": CLASSES,
           "n_items": 6, "unchanged": False, "before": sep, "after": {**sep, "knn_acc": 0.8, "silhouette": 0.3},
           "knn_gain": 0.3, "knn_gain_se": 0.05, "silhouette_gain": 0.25, "direction": "more", "health": [],
           "method": "pca", "explained": {"before": 0.4, "after": 0.6}, "items": items}
    out.update(over)
    return out


def test_embedding_maps_are_two_panels_coloured_by_class_with_mistakes_marked():
    fig = inspect_plots.embedding_maps(_result())
    assert isinstance(fig, go.Figure)
    before = [t for t in fig.data if t.meta.startswith("before:")]
    after = [t for t in fig.data if t.meta.startswith("after:")]
    keys = [t for t in fig.data if t.meta.startswith("key:")]
    assert fig.data[:2 * len(CLASSES)] == tuple(before + after)  # data first: curve numbers index the panels
    assert [t.name for t in before] == [t.name for t in after] == CLASSES
    assert all(t.showlegend is False for t in before + after)  # the legend is drawn by the keys alone
    # a circle per class, whatever symbols its points have, and one x for "wrong"
    assert [(t.name, t.marker.symbol) for t in keys] == [(c, "circle") for c in CLASSES] + [("× wrong", "x")]
    assert {t.xaxis for t in before} == {"x"} and {t.xaxis for t in after} == {"x2"}
    assert before[0].marker.color == after[0].marker.color != before[1].marker.color  # a class keeps its colour
    cats = before[0]
    assert list(cats.x) == [0.0, 1.0] and list(after[0].y) == [0.0, 1.0]
    assert list(cats.marker.symbol) == ["circle", "x"]  # item 1 is a cat the model calls a dog
    assert [list(c[:3]) for c in cats.customdata] == [[0, "cat", "cat"], [1, "cat", "dog"]]
    titles = [a.text for a in fig.layout.annotations[:2]]
    assert "Pretrained backbone (before training)" in titles[0] and "k-NN accuracy 50%" in titles[0]
    assert "After fine-tuning" in titles[1] and "k-NN accuracy 80%" in titles[1] and "silhouette 0.30" in titles[1]
    assert "PCA" in fig.layout.title.text and "validation" in fig.layout.title.text


def test_embedding_maps_hover_shows_texts_and_handles_no_items():
    texts = ["a <b>bold</b> claim that goes on and on " * 5] + [f"text {i}" for i in range(1, 6)]
    items = _result()["items"]
    for it, t in zip(items, texts):
        it["text"] = t
    fig = inspect_plots.embedding_maps(_result(items=items, method="tsne"))
    hover = fig.data[0].customdata[0][3]
    assert hover.startswith("a &lt;b>bold") and "<br>" in hover and hover.endswith("…")  # escaped, wrapped, cut
    assert "t-SNE" in fig.layout.title.text
    empty = inspect_plots.embedding_maps(_result(items=[]))
    assert "No items" in empty.layout.annotations[0].text


def test_selected_positions_reads_customdata_or_the_figure():
    fig = inspect_plots.embedding_maps(_result())
    with_data = [{"curve_number": 0, "point_index": 1, "customdata": [1, "cat", "dog", "x"]}]
    assert inspect_plots.selected_positions(with_data, fig) == [1]
    # without customdata: looked up by curve and point (the dog trace of the "after" panel holds items 2 and 3)
    dog_after = next(i for i, t in enumerate(fig.data) if t.meta == "after:dog")
    points = [{"curve_number": dog_after, "point_index": 1}, {"curve_number": dog_after, "point_index": 1},
              {"curve_number": 0, "point_index": 0}]
    assert inspect_plots.selected_positions(points, fig) == [3, 0]  # in order, no repeats
    assert inspect_plots.selected_positions(None, fig) == []


def test_clickable_confusion_has_one_selectable_marker_per_cell():
    cm = [[5, 1, 0], [2, 3, 0], [0, 0, 4]]
    fig = inspect_plots.clickable_confusion(cm, CLASSES, split="test", unit="images")
    heat, cells = fig.data
    assert heat.type == "heatmap" and cells.meta == "cells"
    assert len(cells.x) == 9 and list(cells.customdata[1]) == [0, 1, 1]  # true cat, predicted dog, 1 image
    assert (cells.x[3], cells.y[3]) == ("cat", "dog")  # customdata [1, 0, 2]: true dog, predicted cat
    assert list(cells.customdata[3]) == [1, 0, 2]
    assert cells.marker.opacity == 0 and cells.selected.marker.opacity == 1  # invisible until clicked
    assert fig.layout.hoverdistance == -1  # a click anywhere in a cell picks that cell's marker
    assert "12 of 15 test images correct (80%)" in fig.layout.title.subtitle.text
    assert inspect_plots.selected_cell([{"curve_number": 1, "point_index": 3}], fig) == (1, 0)
    assert inspect_plots.selected_cell([{"customdata": [2, 2, 4]}], fig) == (2, 2)
    assert inspect_plots.selected_cell([], fig) is None
    assert inspect_plots.selected_cell([{"curve_number": 0, "point_index": 3}], fig) is None  # the heatmap itself


def test_reading_says_which_way_the_classes_moved():
    more = read_separation(_result())
    assert more.ok and more.text.startswith("Classes separate more after fine-tuning")
    assert "k-NN accuracy 50% → 80%" in more.text and "silhouette 0.05 → 0.30" in more.text
    assert "+30 ± 5 points" in more.text
    less = read_separation(_result(direction="less", mode="scratch", knn_gain=-0.2))
    assert less.text.startswith("Classes separate less after training from scratch")
    same = read_separation(_result(direction="same"))
    assert same.text.startswith("Classes separate about as well after fine-tuning as before")
    frozen = read_separation(_result(unchanged=True, mode="frozen"))
    assert frozen.ok and "features are exactly the pretrained ones" in frozen.text
    sick = read_separation(_result(health=[{"code": "at_chance"}]))
    assert not sick.ok and "unhealthy" in sick.text
    few = read_separation(_result(before={"knn_acc": None, "silhouette": None}))
    assert not few.ok and "Too few items" in few.text


def test_titles_and_captions():
    assert space_titles("scratch", False) == ("Random initial weights (before training)", "After training from scratch")
    assert space_titles("frozen", True)[1] == "After training (backbone frozen)"
    row = {"true": "cat", "predicted": "dog", "top": [{"class": "dog", "probability": 0.71},
                                                      {"class": "cat", "probability": 0.2},
                                                      {"class": "fox", "probability": 0.09}]}
    assert item_caption(row) == "true cat · dog (71%), cat (20%)"
    assert item_caption(row, top=3).endswith("fox (9%)")


def test_a_frozen_run_shows_no_change_arrow_and_a_trained_one_shows_its_gain():
    from tl_core.presentation.inspect_report import gain_deltas

    assert gain_deltas(_result()) == ("+30.0 points", "+0.25")
    # a frozen run's features are the pretrained ones: "+0.0 points" with a green arrow would claim a change
    assert gain_deltas(_result(mode="frozen", unchanged=True, knn_gain=0.0, silhouette_gain=0.0)) == (None, None)
    assert gain_deltas(_result(knn_gain=None, silhouette_gain=None)) == (None, None)
