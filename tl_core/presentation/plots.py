"""Pure plotting functions: run data in, ``plotly.graph_objects.Figure`` out.

Nothing here touches the UI (no streamlit import) or the disk, so every chart a
student sees can be built and checked in a plain unit test.

Conventions, shared by every chart so a classroom can read them at a glance:

* one colour per training mode (``MODE_COLORS``) and one wording (``MODE_LABELS``);
* accuracies are stored as fractions 0..1 and shown as percent (axis tick format);
* big fonts, a title that says what is compared, axis titles with units;
* no data yet -> an empty figure with a friendly annotation, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_core.presentation.formatting import (  # noqa: F401  (plots.format_pct & co. read well at call sites)
    FROZEN_FILL, FROZEN_LINE, HEAD_COLOR, MODE_COLORS, MODE_LABELS, MODE_ORDER, format_params, format_pct, mode_color,
    mode_label, tint, trainable_summary)
from tl_core.runs import comparison

# ----------------------------------------------------------------------------
# Shared vocabulary
# ----------------------------------------------------------------------------

TRAIN_DASH = "dash"
VAL_DASH = "solid"
CHANCE_COLOR = "#555555"

FONT_SIZE = 16
TITLE_SIZE = 22
WAITING_TEXT = "Waiting for the first epoch…"

_ACC_METRICS = {"val_acc", "train_acc"}
_METRIC_LABELS = {
    "val_acc": "validation accuracy (%)",
    "train_acc": "training accuracy (%)",
    "val_loss": "validation loss (cross-entropy)",
    "train_loss": "training loss (cross-entropy)",
}


# ----------------------------------------------------------------------------
# Run-record helpers (tolerant to partial records)
# ----------------------------------------------------------------------------


def _cfg(run: Mapping[str, Any]) -> Mapping[str, Any]:
    return run.get("config") or {}


def _summary(run: Mapping[str, Any]) -> Mapping[str, Any]:
    return run.get("summary") or {}


def _sorted_modes(modes: Iterable[str]) -> list[str]:
    modes = set(modes)
    known = [m for m in MODE_ORDER if m in modes]
    return known + sorted(m for m in modes if m not in MODE_ORDER)


def _classes_of(runs: Iterable[Mapping[str, Any]]) -> list[str] | None:
    for r in runs:
        classes = _summary(r).get("classes")
        if classes:
            return list(classes)
    return None


def _distinct(runs: Iterable[Mapping[str, Any]], key: str) -> list[Any]:
    seen: list[Any] = []
    for r in runs:
        v = _cfg(r).get(key)
        if v is not None and v not in seen:
            seen.append(v)
    return seen


def _data_name(data: Any) -> str:
    s = str(data)
    return s.split(":", 1)[1] if s.startswith("builtin:") else s


def _what(runs: Sequence[Mapping[str, Any]]) -> str:
    """'animals · mobilenet_v2' for the title of a comparison chart."""
    data = ", ".join(_data_name(d) for d in _distinct(runs, "data"))
    backbones = ", ".join(str(b) for b in _distinct(runs, "backbone"))
    return " · ".join(p for p in (data, backbones) if p)


def run_label(run: Mapping[str, Any]) -> str:
    """Legend label: 'mobilenet_v2 · Fine-tune (k=3) · 25/class · a1b2c3'."""
    cfg = _cfg(run)
    mode = cfg.get("mode")
    m = mode_label(mode)
    if mode == "finetune" and cfg.get("freeze_depth") is not None:
        m += f" (k={cfg['freeze_depth']})"
    parts = [str(cfg.get("backbone") or "?"), m]
    if cfg.get("labels_per_class") is not None:
        parts.append(f"{cfg['labels_per_class']}/class")
    if run.get("run_id"):
        parts.append(str(run["run_id"]))
    label = " · ".join(parts)
    status = run.get("status")
    if status and status != "completed":
        label += f" ({status})"
    return label


# ----------------------------------------------------------------------------
# Layout helpers
# ----------------------------------------------------------------------------


def _style(fig: go.Figure, title: str, subtitle: str | None = None, height: int = 460) -> go.Figure:
    title_dict: dict[str, Any] = {"text": title, "font": {"size": TITLE_SIZE}, "x": 0.0, "xanchor": "left"}
    if subtitle:
        title_dict["subtitle"] = {"text": subtitle, "font": {"size": FONT_SIZE - 1, "color": "#444"}}
    fig.update_layout(
        template="plotly_white",
        title=title_dict,
        font={"size": FONT_SIZE},
        legend={"font": {"size": FONT_SIZE - 2}},
        height=height,
        margin={"l": 70, "r": 30, "t": 110 if subtitle else 80, "b": 70},
        hoverlabel={"font_size": FONT_SIZE - 2},
    )
    return fig


def empty_figure(message: str = WAITING_TEXT, title: str = "") -> go.Figure:
    """A blank chart that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": FONT_SIZE + 4, "color": "#777"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, title, height=320)


def _pct_axis(axis_update, title: str, upper: float = 1.0, **kw) -> None:
    axis_update(title_text=title, tickformat=".0%", range=[0, upper], **kw)


def _epoch_axis(n_epochs: int) -> dict[str, Any]:
    d: dict[str, Any] = {"title_text": "epoch", "tickformat": "d"}
    if n_epochs <= 15:
        d.update(tickmode="linear", tick0=1, dtick=1)
    return d


def _add_chance(fig: go.Figure, n_classes: int | None) -> None:
    if not n_classes or n_classes < 2:
        return
    chance = 1.0 / n_classes
    fig.add_hline(
        y=chance,
        line_dash="dash",
        line_color=CHANCE_COLOR,
        line_width=2,
        annotation_text=f"chance ({format_pct(chance)})",
        annotation_position="bottom right",
        annotation_font={"size": FONT_SIZE - 2, "color": CHANCE_COLOR},
    )


# ----------------------------------------------------------------------------
# Training curves
# ----------------------------------------------------------------------------


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
    _pct_axis(lambda **kw: fig.update_yaxes(row=1, col=2, **kw), "accuracy (%)", upper=1.02)

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
    _style(fig, title)
    fig.update_layout(legend={"orientation": "h", "y": -0.2, "x": 0.5, "xanchor": "center"})
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
        mode = _cfg(r).get("mode")
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
        _pct_axis(fig.update_yaxes, _METRIC_LABELS[metric], upper=1.02)
    else:
        fig.update_yaxes(title_text=_METRIC_LABELS[metric], rangemode="tozero")
    _style(fig, title, subtitle=_what(runs) or None, height=480 + 22 * len(runs))
    fig.update_layout(legend={"orientation": "h", "y": -0.18, "x": 0, "yanchor": "top"})
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
            by_mode.setdefault(_cfg(r).get("mode"), []).append(dict(zip(xs, ys)))
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
        _pct_axis(fig.update_yaxes, _METRIC_LABELS[metric], upper=1.02)
    else:
        fig.update_yaxes(title_text=_METRIC_LABELS[metric], rangemode="tozero")
    _style(fig, title, subtitle="mean over seeds, band: lowest to highest" if any(
        len(s) > 1 for s in by_mode.values()) else None)
    fig.update_layout(legend={"orientation": "h", "y": -0.18, "x": 0, "yanchor": "top"})
    return fig


# ----------------------------------------------------------------------------
# Comparisons across runs
# ----------------------------------------------------------------------------


def _error_bars(cells: Sequence[comparison.Cell]) -> dict[str, Any]:
    return {"type": "data", "array": [c.std for c in cells], "visible": any(c.n > 1 for c in cells),
            "thickness": 2, "width": 6}


def _seeds_note(cells: Sequence[comparison.Cell]) -> str:
    most = max((c.n for c in cells), default=1)
    return f"mean \u00b1 std over {most} seeds" if most > 1 else "one seed each: run several seeds for error bars"


def _cell_text(cell: comparison.Cell) -> str:
    text = format_pct(cell.mean) + (f" \u00b1 {round(100 * cell.std)}" if cell.n > 1 else "")
    return text + ("<br>unhealthy" if not cell.healthy else "")


def transfer_gap(runs: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Test accuracy of the fair comparison at one labels-per-class value: frozen, the fine-tune depth validation
    picked, and the from-scratch baseline (trained to convergence when there is one), with error bars over seeds.
    Several labels-per-class values: the data-efficiency lines instead. An unhealthy cell is drawn hatched and says so.
    """
    all_cells = comparison.cells(runs)
    if not all_cells:
        return empty_figure(
            "No completed runs with a test accuracy yet: train frozen, fine-tune and from-scratch models to compare.",
            "Transfer gap",
        )
    groups = comparison.by_labels(all_cells)
    if len(groups) > 1:
        return data_efficiency(runs)
    lpc, group = next(iter(groups.items()))
    picked = [c for c in (comparison.pick_pretrained(group, "frozen"), comparison.pick_pretrained(group, "finetune"),
                          comparison.pick_scratch(group)) if c is not None]
    fig = go.Figure()
    for cell in picked:
        name = mode_label(cell.mode)
        if cell.mode == "finetune" and cell.freeze_depth is not None:
            name += f" (k={cell.freeze_depth})"
        if cell.mode == "scratch":
            name += " (same budget)" if cell.budget == "fixed" else " (to convergence)"
        fig.add_trace(go.Bar(
            x=[name], y=[cell.mean], name=name, marker={"color": mode_color(cell.mode),
                                                        "pattern": {"shape": "" if cell.healthy else "/"}},
            error_y=_error_bars([cell]), text=[_cell_text(cell)], textposition="outside",
            textfont={"size": FONT_SIZE + 2}, cliponaxis=False, meta=cell.mode,
            customdata=[[cell.n]], hovertemplate=name + ": %{y:.1%} (%{customdata[0]} seeds)<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.25, showlegend=False)
    fig.update_xaxes(title_text="training mode")
    what = _what([r for c in picked for r in c.runs])
    _pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.12)
    _add_chance(fig, len(_classes_of(picked[0].runs) or []) or None)
    subtitle = f"Test accuracy at the epoch validation chose, {_seeds_note(picked)}" + (
        f", {lpc} labels per class." if lpc is not None else ".")
    return _style(fig, f"Transfer gap: {what}" if what else "Transfer gap", subtitle=subtitle, height=500)


def data_efficiency(runs: Sequence[Mapping[str, Any]]) -> go.Figure:
    """When does transfer pay? Test accuracy over labels per class for frozen, the best fine-tune and the fair
    from-scratch baseline, with error bars over seeds, and a mark where scratch catches up (the crossover)."""
    all_cells = [c for c in comparison.cells(runs) if c.labels_per_class is not None]
    title = "When does transfer pay?"
    if not all_cells:
        return empty_figure("No completed runs with a labels-per-class setting yet.", title)
    groups = sorted(comparison.by_labels(all_cells).items())
    fig = go.Figure()
    picks = {"frozen": lambda g: comparison.pick_pretrained(g, "frozen"),
             "finetune": lambda g: comparison.pick_pretrained(g, "finetune"),
             "scratch": comparison.pick_scratch}
    for mode, pick in picks.items():
        pts = [(lpc, cell) for lpc, g in groups if (cell := pick(g)) is not None]
        if not pts:
            continue
        cells_ = [c for _, c in pts]
        name = mode_label(mode) + (" (to convergence)" if mode == "scratch" and cells_[-1].budget == "converge" else "")
        fig.add_trace(go.Scatter(
            x=[lpc for lpc, _ in pts], y=[c.mean for c in cells_], name=name, mode="lines+markers",
            error_y=_error_bars(cells_), line={"color": mode_color(mode), "width": 3},
            marker={"size": 11, "symbol": ["circle" if c.healthy else "x" for c in cells_]}, meta=mode,
            customdata=[[c.n, c.freeze_depth if c.freeze_depth is not None else "-"] for c in cells_],
            hovertemplate=name + "<br>%{x} labels/class: %{y:.1%} (%{customdata[0]} seeds, k=%{customdata[1]})"
                                 "<extra></extra>"))
    for mode in comparison.PRETRAINED_MODES:
        at = comparison.crossover(all_cells, mode)
        if at is not None:
            fig.add_vline(x=at, line_dash="dot", line_color=mode_color(mode), line_width=2,
                          annotation_text=f"scratch catches {MODE_LABELS[mode].split(' (')[0].lower()} here",
                          annotation_position="top left", annotation_font={"size": FONT_SIZE - 3})
    lpcs = [lpc for lpc, _ in groups]
    fig.update_xaxes(title_text="labels per class (training items per class)", type="log",
                     tickmode="array", tickvals=lpcs, ticktext=[str(v) for v in lpcs])
    _pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.05)
    _add_chance(fig, len(_classes_of(all_cells[0].runs) or []) or None)
    what = _what([r for c in all_cells for r in c.runs])
    return _style(fig, f"{title} {what}" if what else title, height=500,
                  subtitle=f"Test accuracy, {_seeds_note(all_cells)}. Pretraining helps most when labels are scarce.")


def freeze_sweep(runs: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Test accuracy vs freeze depth k for fine-tuning (Yosinski et al. 2014), error bars over seeds; the frozen
    and from-scratch cells at the same labels per class as dotted reference lines."""
    all_cells = comparison.cells(runs)
    title = "Freeze-depth sweep"
    tuned = [c for c in all_cells if c.mode == "finetune" and c.freeze_depth is not None]
    if not tuned:
        return empty_figure("No completed fine-tunes with a freeze depth yet.", title)
    lpc = tuned[-1].labels_per_class
    group = comparison.by_labels(all_cells)[lpc]
    tuned = sorted((c for c in group if c.mode == "finetune" and c.freeze_depth is not None),
                   key=lambda c: c.freeze_depth)
    by_k: dict[int, comparison.Cell] = {}
    for c in tuned:  # one cell per depth: the one with the most seeds
        if c.freeze_depth not in by_k or c.n > by_k[c.freeze_depth].n:
            by_k[c.freeze_depth] = c
    ks = sorted(by_k)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=ks, y=[by_k[k].mean for k in ks], name=MODE_LABELS["finetune"], mode="lines+markers",
        error_y=_error_bars([by_k[k] for k in ks]), line={"color": mode_color("finetune"), "width": 3},
        marker={"size": 11}, meta="finetune", hovertemplate="Fine-tune<br>k=%{x}: %{y:.1%}<extra></extra>"))
    for ref in (comparison.pick_pretrained(group, "frozen"), comparison.pick_scratch(group)):
        if ref is None:
            continue
        name = f"{mode_label(ref.mode)} ({_cell_text(ref).replace('<br>', ' ')})"
        fig.add_trace(go.Scatter(
            x=[ks[0], ks[-1]] if len(ks) > 1 else [ks[0] - 0.5, ks[0] + 0.5], y=[ref.mean] * 2, name=name,
            mode="lines", line={"color": mode_color(ref.mode), "width": 3, "dash": "dot"}, meta=ref.mode,
            hovertemplate=name + "<extra></extra>"))
    xaxis: dict[str, Any] = {"title_text": "freeze depth k (blocks frozen / copied)", "tickformat": "d"}
    if len(ks) <= 25:
        xaxis.update(tickmode="array", tickvals=ks)
    fig.update_xaxes(**xaxis)
    _pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.05)
    _add_chance(fig, len(_classes_of(tuned[0].runs) or []) or None)
    what = _what([r for c in tuned for r in c.runs])
    subtitle = (f"Test accuracy, {_seeds_note(tuned)}" + (f", {lpc} labels per class" if lpc is not None else "")
                + ". Deeper k = more pretrained blocks kept.")
    return _style(fig, f"{title}: {what}" if what else title, subtitle=subtitle, height=500)


# ----------------------------------------------------------------------------
# Single-run diagnostics
# ----------------------------------------------------------------------------


def confusion_matrix(
    cm: Sequence[Sequence[float]] | None,
    classes: Sequence[str] | None,
    normalize: bool = True,
) -> go.Figure:
    """Heatmap with true class on y (top to bottom) and predicted class on x.

    With ``normalize`` the colour is the share of each true class (row sums to
    100%, the diagonal is per-class recall); cells always show the raw count.
    """
    title = "Confusion matrix"
    if not cm or not classes:
        return empty_figure("No confusion matrix yet: it appears when the run finishes.", title)
    counts = [[float(v) for v in row] for row in cm]
    n = len(classes)
    if len(counts) != n or any(len(row) != n for row in counts):
        raise ValueError(f"confusion matrix must be {n}x{n} for {n} classes")
    classes = [str(c) for c in classes]

    if normalize:
        z = []
        for row in counts:
            s = sum(row)
            z.append([v / s if s else 0.0 for v in row])
        text = [
            [f"{int(c)}<br>{format_pct(p)}" for c, p in zip(crow, zrow)] for crow, zrow in zip(counts, z)
        ]
        colorbar = {"title": {"text": "share of<br>true class"}, "tickformat": ".0%"}
        zmax = 1.0
        hover = "true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"
    else:
        z = counts
        text = [[f"{int(c)}" for c in row] for row in counts]
        colorbar = {"title": {"text": "images"}}
        zmax = max((max(row) for row in counts), default=1.0) or 1.0
        hover = "true %{y}<br>predicted %{x}<br>%{z:d} images<extra></extra>"

    total = sum(sum(row) for row in counts)
    correct = sum(counts[i][i] for i in range(n))
    cell_font = FONT_SIZE if n <= 6 else (FONT_SIZE - 4 if n <= 12 else 10)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=classes,
            y=classes,
            text=text,
            texttemplate="%{text}" if n <= 25 else None,
            textfont={"size": cell_font},
            colorscale="Blues",
            zmin=0,
            zmax=zmax,
            colorbar=colorbar,
            hovertemplate=hover,
            xgap=2,
            ygap=2,
        )
    )
    fig.update_xaxes(title_text="predicted class", side="bottom", tickangle=-30 if n > 6 else 0)
    fig.update_yaxes(title_text="true class", autorange="reversed")
    subtitle = f"{int(correct)} of {int(total)} validation images correct ({format_pct(correct / total if total else 0)})"
    side = 420 + 26 * n
    _style(fig, title, subtitle=subtitle, height=min(side, 1000))
    return fig


def class_balance(counts: Mapping[str, int] | None, title: str = "Images per class", unit: str = "images") -> go.Figure:
    """Bar chart of items per class (`unit`: "images", "texts"), with the imbalance ratio in the subtitle."""
    if not counts:
        return empty_figure(f"No {unit} yet.", title)
    names = [str(k) for k in counts]
    values = [int(v) for v in counts.values()]
    lo, hi = min(values), max(values)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            name=unit,
            marker={"color": "#0072B2"},
            text=values,
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"%{{x}}: %{{y}} {unit}<extra></extra>",
        )
    )
    mean = sum(values) / len(values)
    fig.add_hline(  # labelled in the right margin, where no bar label can sit under it
        y=mean,
        line_dash="dot",
        line_color=CHANCE_COLOR,
        annotation_text=f"mean<br>{mean:.0f}",
        annotation_position="right",
        annotation_font={"size": FONT_SIZE - 2, "color": CHANCE_COLOR},
    )
    fig.update_xaxes(title_text="class", tickangle=-30 if len(names) > 8 else 0)
    fig.update_yaxes(title_text=f"{unit} (count)", rangemode="tozero", range=[0, hi * 1.15 + 1])
    if lo == 0:
        subtitle = f"{len(names)} classes · {sum(values)} {unit}<br>some classes have no {unit}!"
    else:
        ratio = hi / lo
        subtitle = (f"{len(names)} classes · {sum(values)} {unit}<br>"
                    f"{'imbalanced' if ratio >= 1.5 else 'balanced'}: largest/smallest = {ratio:.1f}×")
    fig = _style(fig, title, subtitle=subtitle, height=440)
    fig.update_layout(margin={"r": 70, "t": 125})  # a narrow column: two subtitle lines, the mean label at the right
    return fig


def topk_bar(probs: Mapping[str, float] | None, k: int = 5, title: str = "Top predictions") -> go.Figure:
    """Horizontal bars of the k most likely classes, highest at the top."""
    if not probs:
        return empty_figure("No prediction yet.", title)
    items = sorted(((str(c), float(p)) for c, p in probs.items()), key=lambda t: -t[1])[: max(1, k)]
    names = [c for c, _ in items]
    values = [p for _, p in items]
    colors = [MODE_COLORS["frozen"]] + ["#9DB9D3"] * (len(items) - 1)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            name="probability",
            marker={"color": colors},
            text=[format_pct(p, 1) for p in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="class")
    _pct_axis(fig.update_xaxes, "predicted probability (%)", upper=1.15)
    fig.update_xaxes(tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    return _style(fig, title, height=160 + 55 * len(items))


def block_change(block_names: Sequence[str], cka: Sequence[float] | None, freeze_depth: int | None) -> go.Figure:
    """How much fine-tuning changed each block: 1 - linear CKA against the pretrained network, per block.

    Frozen blocks (the first ``freeze_depth``) are labelled "frozen" and sit at 0 by construction; the rest take the
    fine-tune colour. The usual picture: early blocks barely move, the last ones change most.
    """
    title = "What fine-tuning changed"
    if not cka:
        return empty_figure("Not measured for this run.", title)
    names = [str(n) for n in block_names]
    if len(names) != len(cka):
        raise ValueError(f"{len(names)} block names but {len(cka)} CKA values")
    k = max(0, min(int(freeze_depth or 0), len(names)))
    change = [max(0.0, 1.0 - float(v)) for v in cka]
    colors = [FROZEN_LINE if i < k else MODE_COLORS["finetune"] for i in range(len(names))]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=change,
            name="change",
            marker={"color": colors},
            text=["frozen" if i < k else f"{v:.2f}" for i, v in enumerate(change)],  # words: no emoji font needed
            textposition="outside",
            cliponaxis=False,
            customdata=[float(v) for v in cka],
            hovertemplate="%{x}: CKA %{customdata:.3f} with the pretrained block<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="block (input → output)", tickangle=-30 if len(names) > 8 else 0)
    fig.update_yaxes(title_text="change (1 − CKA)", rangemode="tozero", range=[0, max(0.1, max(change) * 1.25)])
    moved = max(range(len(names)), key=lambda i: change[i])
    subtitle = (f"0 = the block computes what it did before training (linear CKA on validation items); "
                f"grey = frozen.<br>Most changed: {names[moved]}.")
    fig = _style(fig, title, subtitle=subtitle, height=420)
    fig.update_layout(margin={"t": 125})
    return fig
