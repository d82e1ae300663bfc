"""Learning curves: one run live, several runs overlaid, and one mean curve per mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_core.presentation.chart_style import (
    _ACC_METRICS,
    _METRIC_LABELS,
    FONT_SIZE,
    LEGEND_ROW_PX,
    TRAIN_DASH,
    VAL_DASH,
    WAITING_TEXT,
    config_of,
    _epoch_axis,
    pct_axis,
    _sorted_modes,
    bottom_legend,
    style_figure,
    what_was_run,
    empty_figure,
    run_label,
)
from tl_core.presentation.formatting import format_pct, mode_color, mode_label, tint


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for i, h in enumerate(history):
        v = h.get(key)
        if v is None:
            continue
        xs.append(int(h.get("epoch", i + 1)))
        ys.append(float(v))
    return xs, ys


def learning_curves(
    history: Sequence[Mapping[str, Any]] | None,
    mode: str | None = None,
    title: str = "Learning curves",
) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch; train dashed, validation solid.

    ``mode`` only picks the colour, so the curves match the other charts.
    """
    history = list(history or [])
    if not history:
        return empty_figure(WAITING_TEXT, title)

    color = mode_color(mode) if mode else "#0072B2"
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.12
    )
    specs = (
        ("train_loss", 1, "train", TRAIN_DASH),
        ("val_loss", 1, "validation", VAL_DASH),
        ("train_acc", 2, "train", TRAIN_DASH),
        ("val_acc", 2, "validation", VAL_DASH),
    )
    for key, col, name, dash in specs:
        xs, ys = _series(history, key)
        is_acc = key.endswith("acc")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                mode="lines+markers",
                line={"color": color, "dash": dash, "width": 3},
                marker={"size": 8},
                meta=key,
                hovertemplate=(
                    f"{name} {'accuracy' if is_acc else 'loss'}<br>epoch %{{x}}: "
                    + ("%{y:.1%}" if is_acc else "%{y:.3f}")
                    + "<extra></extra>"
                ),
            ),
            row=1,
            col=col,
        )

    n_epochs = max((int(h.get("epoch", i + 1)) for i, h in enumerate(history)), default=1)
    fig.update_xaxes(**_epoch_axis(n_epochs))
    fig.update_yaxes(title_text="loss (cross-entropy)", rangemode="tozero", row=1, col=1)
    pct_axis(lambda **kw: fig.update_yaxes(row=1, col=2, **kw), "accuracy (%)", upper=1.02)

    xs, ys = _series(history, "val_acc")
    if ys:
        i = max(range(len(ys)), key=lambda j: ys[j])
        fig.add_annotation(
            x=xs[i],
            y=ys[i],
            xref="x2",
            yref="y2",
            text=f"best {format_pct(ys[i])} (epoch {xs[i]})",
            showarrow=True,
            arrowhead=2,
            ay=30,
            font={"size": FONT_SIZE - 2},
        )
    style_figure(fig, title)
    bottom_legend(fig)
    return fig


def overlay_curves(runs: Sequence[Mapping[str, Any]], metric: str = "val_acc") -> go.Figure:
    """One line per run for ``metric`` (val_acc, train_acc, val_loss, train_loss)."""
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(_METRIC_LABELS)}, not {metric!r}")
    is_acc = metric in _ACC_METRICS
    title = f"Compare runs: {_METRIC_LABELS[metric].split(' (')[0]}"
    runs = [r for r in runs or [] if r.get("history")]
    if not runs:
        return empty_figure(WAITING_TEXT, title)

    dashes = ("solid", "dot", "dashdot", "longdash", "dash", "longdashdot")
    per_mode: dict[str, int] = {}
    fig = go.Figure()
    max_epoch = 1
    for r in runs:
        mode = config_of(r).get("mode")
        idx = per_mode.get(mode, 0)
        per_mode[mode] = idx + 1
        xs, ys = _series(r["history"], metric)
        max_epoch = max([max_epoch, *xs])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=run_label(r),
                mode="lines+markers",
                line={"color": mode_color(mode), "dash": dashes[idx % len(dashes)], "width": 3},
                marker={"size": 7},
                meta=r.get("run_id"),
                hovertemplate="%{fullData.name}<br>epoch %{x}: "
                + ("%{y:.1%}" if is_acc else "%{y:.3f}")
                + "<extra></extra>",
            )
        )
    fig.update_xaxes(**_epoch_axis(max_epoch))
    if is_acc:
        pct_axis(fig.update_yaxes, _METRIC_LABELS[metric], upper=1.02)
    else:
        fig.update_yaxes(title_text=_METRIC_LABELS[metric], rangemode="tozero")
    rows = -(-len(runs) // 2)  # two run labels fit on one legend row
    style_figure(fig, title, subtitle=what_was_run(runs) or None, height=460 + LEGEND_ROW_PX * rows)
    bottom_legend(fig, rows)
    return fig


def mode_curves(runs: Sequence[Mapping[str, Any]], metric: str = "val_acc") -> go.Figure:
    """One line per mode: the mean of its runs (seeds) at every epoch they reached, with the min-max band.

    The classroom demo trains each mode over several seeds: a band shows the class how much a seed alone moves
    a curve, which one line per run would only clutter.
    """
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(_METRIC_LABELS)}, not {metric!r}")
    is_acc = metric in _ACC_METRICS
    title = f"Learning curves: {_METRIC_LABELS[metric].split(' (')[0]}"
    by_mode: dict[str, list[dict[int, float]]] = {}
    for r in runs or []:
        xs, ys = _series(r.get("history") or [], metric)
        if xs:
            by_mode.setdefault(config_of(r).get("mode"), []).append(dict(zip(xs, ys)))
    if not by_mode:
        return empty_figure(WAITING_TEXT, title)
    fig = go.Figure()
    max_epoch = 1
    for mode in _sorted_modes(by_mode):
        series = by_mode[mode]
        epochs = sorted({e for s in series for e in s})
        max_epoch = max(max_epoch, epochs[-1])
        values = [[s[e] for s in series if e in s] for e in epochs]
        color = mode_color(mode)
        if len(series) > 1:
            fig.add_trace(go.Scatter(x=epochs + epochs[::-1], y=[max(v) for v in values] + [min(v) for v in values][::-1],
                                     fill="toself", fillcolor=tint(color, 0.75), line={"width": 0}, hoverinfo="skip",
                                     showlegend=False, meta=f"{mode}:band"))
        n = len(series)
        name = mode_label(mode) + (f" ({n} seeds)" if n > 1 else "")
        fig.add_trace(go.Scatter(
            x=epochs, y=[sum(v) / len(v) for v in values], name=name, mode="lines+markers", meta=mode,
            line={"color": color, "width": 3}, marker={"size": 7},
            hovertemplate=name + "<br>epoch %{x}: " + ("%{y:.1%}" if is_acc else "%{y:.3f}") + "<extra></extra>"))
    fig.update_xaxes(**_epoch_axis(max_epoch))
    if is_acc:
        pct_axis(fig.update_yaxes, _METRIC_LABELS[metric], upper=1.02)
    else:
        fig.update_yaxes(title_text=_METRIC_LABELS[metric], rangemode="tozero")
    style_figure(fig, title, subtitle="mean over seeds, band: lowest to highest" if any(
        len(s) > 1 for s in by_mode.values()) else None)
    bottom_legend(fig)
    return fig
