"""Pure figures for the Inspect page: the items' features before and after training side by side, and a confusion
matrix whose cells can be clicked. Data in, ``plotly.graph_objects.Figure`` out; tested without a UI.

Plotly's hover labels take text only (no images), so a point's hover says its class, its prediction and, for text,
the text itself; clicking points (or dragging a box or lasso around them) selects them, and the page shows their
images. Each point carries its item's position in the split as ``customdata[0]``: `selected_positions` turns a
selection back into items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from tl_core.presentation import chart_style, plots
from tl_core.presentation.formatting import format_pct
from tl_core.presentation.inspect_report import space_titles, two_decimals

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
HOVER_TEXT_CHARS = 90
SELECTED_COLOR = "#D55E00"


def class_colors(n: int) -> list[str]:
    """A colour per class: colour-blind-safe for up to 11 classes, then a larger palette."""
    palette = qualitative.Safe if n <= len(qualitative.Safe) else qualitative.Alphabet if n <= 26 else qualitative.Dark24
    return [palette[i % len(palette)] for i in range(n)]


def _wrap(text: str, width: int = 45) -> str:
    text = text if len(text) <= HOVER_TEXT_CHARS else text[: HOVER_TEXT_CHARS - 1] + "…"
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "<br>".join(w.replace("<", "&lt;") for w in lines)


def _subtitle(sep: Mapping[str, Any]) -> str:
    return f"k-NN accuracy {format_pct(sep.get('knn_acc'))} · silhouette {two_decimals(sep.get('silhouette'))}"


def embedding_maps(result: Mapping[str, Any], texts: Sequence[str] | None = None) -> go.Figure:
    """Two maps side by side, one point per item coloured by its true class; an item the trained model gets wrong
    is drawn as an x. `result` is `Embeddings.to_dict(maps)` (it holds each item's coordinates in both spaces)."""
    items = list(result.get("items") or [])
    method = METHOD_NAMES.get(str(result.get("method")), str(result.get("method") or "map"))
    title = f"What the model learned: {method} of the {'validation' if result.get('split') == 'val' else 'test'} items"
    if not items:
        return plots.empty_figure("No items to draw.", title)
    classes = list(result.get("classes") or sorted({it["true"] for it in items}))
    before_title, after_title = space_titles(str(result.get("mode")), bool(result.get("pretrained_start", True)))
    explained = result.get("explained") or {}
    titles = []
    for name, key in ((before_title, "before"), (after_title, "after")):
        extra = f" · 2 axes keep {format_pct(explained[key])} of the variance" if explained.get(key) else ""
        titles.append(f"<b>{name}</b><br><span style='font-size:14px'>{_subtitle(result.get(key) or {})}{extra}</span>")
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.06)
    colors = class_colors(len(classes))
    for col, key in ((1, "before"), (2, "after")):
        for c, name in enumerate(classes):
            mine = [(pos, it) for pos, it in enumerate(items) if it["true"] == name]
            if not mine:
                continue
            hover = [(_wrap(texts[pos] if texts else it.get("text", "")) if (texts or it.get("text"))
                      else f"item {it['index']}: click to see it") for pos, it in mine]
            fig.add_trace(go.Scatter(
                x=[it[key][0] for _, it in mine], y=[it[key][1] for _, it in mine], mode="markers", name=name,
                legendgroup=name, showlegend=False, meta=f"{key}:{name}",
                marker={"color": colors[c], "size": 9, "line": {"width": 0.5, "color": "#333"},
                        "symbol": ["circle" if it["true"] == it["predicted"] else "x" for _, it in mine]},
                customdata=[[pos, it["true"], it["predicted"], h] for (pos, it), h in zip(mine, hover)],
                hovertemplate="true <b>%{customdata[1]}</b>, predicted <b>%{customdata[2]}</b><br>%{customdata[3]}"
                              "<extra></extra>",
                selected={"marker": {"size": 13}}, unselected={"marker": {"opacity": 0.35}}),
                row=1, col=col)
    _legend_keys(fig, classes, colors)
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False)
    for ann in fig.layout.annotations[:2]:  # the subplot titles
        ann.update(font={"size": chart_style.FONT_SIZE})
    subtitle = ("One point per item, coloured by its true class; × = the trained model gets it wrong. "
                "The axes have no units: only who sits near whom counts.")
    fig = chart_style.style_figure(fig, title, subtitle=subtitle, height=600)
    fig.update_layout(margin={"t": 170}, legend={"title": {"text": "true class"}})
    return fig


def _legend_keys(fig: go.Figure, classes: Sequence[str], colors: Sequence[str]) -> None:
    """The legend's keys, drawn by empty traces after the data (so the data traces keep their curve numbers): a
    circle per class, whatever symbol that class's first point has, and one grey x for "wrong"."""
    for c, name in enumerate(classes):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgroup=name, meta=f"key:{name}",
                                 marker={"color": colors[c], "size": 9, "symbol": "circle",
                                         "line": {"width": 0.5, "color": "#333"}}, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="× wrong", meta="key:wrong",
                             marker={"color": "#777", "size": 9, "symbol": "x"}, hoverinfo="skip"))


def selected_positions(points: Iterable[Mapping[str, Any]] | None, fig: go.Figure | None = None) -> list[int]:
    """The items' positions behind a plotly selection (Streamlit's `event.selection.points`), in selection order,
    without repeats. A point without its customdata is looked up in `fig` by curve and point number."""
    out: list[int] = []
    for p in points or []:
        data = p.get("customdata")
        if data is None and fig is not None:
            curve, index = p.get("curve_number"), p.get("point_index", p.get("point_number"))
            if curve is not None and index is not None and curve < len(fig.data):
                data = fig.data[curve].customdata[index]
        if data is None:
            continue
        pos = int(data[0] if isinstance(data, (list, tuple, np.ndarray)) else data)
        if pos not in out:
            out.append(pos)
    return out


def selected_cell(points: Iterable[Mapping[str, Any]] | None, fig: go.Figure | None = None) -> tuple[int, int] | None:
    """(true, predicted) of the confusion-matrix cell a click selected (`clickable_confusion`), or None."""
    for p in points or []:
        data = p.get("customdata")
        if data is None and fig is not None:
            curve, index = p.get("curve_number"), p.get("point_index", p.get("point_number"))
            if curve is not None and index is not None and curve < len(fig.data) and fig.data[curve].meta == "cells":
                data = fig.data[curve].customdata[index]
        if isinstance(data, (list, tuple, np.ndarray)) and len(data) >= 3:
            return int(data[0]), int(data[1])
    return None


def clickable_confusion(cm: Sequence[Sequence[int]] | None, classes: Sequence[str] | None, split: str = "test",
                        unit: str = "items") -> go.Figure:
    """The confusion matrix (tl_core.presentation.plots.confusion_matrix) with an invisible marker at the centre of
    every cell: clicking anywhere in a cell selects its marker, whose customdata is [true, predicted, count]. The
    selected cell gets an outline."""
    fig = plots.confusion_matrix(cm, classes)
    if not cm or not classes:
        return fig
    n = len(classes)
    names = [str(c) for c in classes]
    cells = [(t, p) for t in range(n) for p in range(n)]
    fig.data[0].hoverinfo = "skip"  # the markers answer the hover, with the same words
    fig.add_trace(go.Scatter(
        x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers", name="cells",
        showlegend=False, meta="cells",
        customdata=[[t, p, int(cm[t][p])] for t, p in cells],
        marker={"symbol": "square-open", "size": 30 if n <= 10 else 16, "opacity": 0,
                "line": {"width": 4, "color": SELECTED_COLOR}, "color": SELECTED_COLOR},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 0}},
        hovertemplate=f"true %{{y}}<br>predicted %{{x}}<br>%{{customdata[2]}} {unit}: click to see them<extra></extra>"))
    total = sum(sum(int(v) for v in row) for row in cm)
    correct = sum(int(cm[i][i]) for i in range(n))
    words = {"val": "validation", "test": "test"}.get(split, split)
    fig.update_layout(
        title_subtitle_text=f"{correct} of {total} {words} {unit} correct ({format_pct(correct / total if total else 0)})"
                            " · click a cell to see its items",
        hovermode="closest", hoverdistance=-1)  # -1: a click anywhere picks the nearest cell
    return fig
