"""What every chart shares: the vocabulary (dashes, fonts, the waiting text), tolerant readers of run
records, and the layout helpers. One place, so a classroom reads every chart the same way:

* one colour per training mode (``MODE_COLORS``) and one wording (``MODE_LABELS``);
* accuracies are stored as fractions 0..1 and shown as percent (axis tick format);
* big fonts, a title that says what is compared, axis titles with units;
* no data yet -> an empty figure with a friendly annotation, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from tl_core.presentation.formatting import MODE_ORDER, format_pct, mode_label
from tl_core.records import config_of, summary_of

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




def _sorted_modes(modes: Iterable[str]) -> list[str]:
    modes = set(modes)
    known = [m for m in MODE_ORDER if m in modes]
    return known + sorted(m for m in modes if m not in MODE_ORDER)


def classes_of(runs: Iterable[Mapping[str, Any]]) -> list[str] | None:
    for r in runs:
        classes = summary_of(r).get("classes")
        if classes:
            return list(classes)
    return None


def _distinct(runs: Iterable[Mapping[str, Any]], key: str) -> list[Any]:
    seen: list[Any] = []
    for r in runs:
        v = config_of(r).get(key)
        if v is not None and v not in seen:
            seen.append(v)
    return seen


def _data_name(data: Any) -> str:
    s = str(data)
    return s.split(":", 1)[1] if s.startswith("builtin:") else s


def what_was_run(runs: Sequence[Mapping[str, Any]]) -> str:
    """'animals · mobilenet_v2' for the title of a comparison chart."""
    data = ", ".join(_data_name(d) for d in _distinct(runs, "data"))
    backbones = ", ".join(str(b) for b in _distinct(runs, "backbone"))
    return " · ".join(p for p in (data, backbones) if p)


def run_label(run: Mapping[str, Any]) -> str:
    """Legend label: 'mobilenet_v2 · Fine-tune (k=3) · 25/class · a1b2c3', its depth label from the run's plan."""
    from tl_core.engine.plan import depth_label_of

    cfg = config_of(run)
    m = mode_label(cfg.get("mode"))
    depth = depth_label_of(run)
    if depth:
        m += f" ({depth})"
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


def style_figure(fig: go.Figure, title: str, subtitle: str | None = None, height: int = 460) -> go.Figure:
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


#: Height of one row of a horizontal legend, in pixels.
LEGEND_ROW_PX = 28


def bottom_legend(fig: go.Figure, rows: int = 1) -> go.Figure:
    """A horizontal legend at the figure's bottom edge, below the x axis's title (never over it): anchored to the
    container, not the plot, with the bottom margin grown to hold the tick labels, the axis title and `rows` rows."""
    fig.update_layout(legend={"orientation": "h", "yref": "container", "y": 0.0, "yanchor": "bottom",
                              "x": 0.0, "xanchor": "left"},
                      margin={"b": 80 + LEGEND_ROW_PX * rows})
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
    return style_figure(fig, title, height=320)


def pct_axis(axis_update, title: str, upper: float = 1.0, **kw) -> None:
    axis_update(title_text=title, tickformat=".0%", range=[0, upper], **kw)


def _epoch_axis(n_epochs: int) -> dict[str, Any]:
    d: dict[str, Any] = {"title_text": "epoch", "tickformat": "d"}
    if n_epochs <= 15:
        d.update(tickmode="linear", tick0=1, dtick=1)
    return d


def add_chance(fig: go.Figure, n_classes: int | None, *, label: bool = True) -> str:
    """A dashed line at chance (1 / classes). `label=False` leaves its words to the caller (a bar chart, whose
    bars would sit on top of them); returns them: 'dashed line: chance (10%)'."""
    if not n_classes or n_classes < 2:
        return ""
    chance = 1.0 / n_classes
    words = f"chance ({format_pct(chance)})"
    fig.add_hline(y=chance, line_dash="dash", line_color=CHANCE_COLOR, line_width=2,
                  **({"annotation_text": words, "annotation_position": "bottom right",
                      "annotation_font": {"size": FONT_SIZE - 2, "color": CHANCE_COLOR}} if label else {}))
    return f"dashed line: {words}"
