"""The backbone as a row of boxes: what a run plan freezes and trains, drawn for a student.

The drawing reads a `RunPlan` (tl_core.engine.plan) and nothing else, so it cannot disagree with what trains.
Where the boxes go (`grid`) is plain geometry, kept apart from the plotly drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import plotly.graph_objects as go

from tl_core.config import Mode
from tl_core.engine import recipes
from tl_core.engine.plan import HEAD_NAME, RunPlan, depth_label
from tl_core.presentation.formatting import (FROZEN_FILL, FROZEN_LINE, HEAD_COLOR, format_params, mode_color,
                                             mode_label, tint, trainable_summary)
from tl_core.presentation.chart_style import style_figure


@dataclass(frozen=True)
class Grid:
    """Boxes in rows of at most `per_row`, reading order left to right; y grows upwards (rows go down)."""

    n_boxes: int
    per_row: int
    rows: int
    w: float = 1.25
    h: float = 1.0
    gap: float = 0.35
    row_gap: float = 0.6

    @property
    def pitch_x(self) -> float:
        return self.w + self.gap

    @property
    def pitch_y(self) -> float:
        return self.h + self.row_gap

    def box(self, i: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of box i."""
        r, c = divmod(i, self.per_row)
        x0, y1 = c * self.pitch_x, -r * self.pitch_y
        return x0, y1 - self.h, x0 + self.w, y1


def grid(n_boxes: int, max_per_row: int = 8) -> Grid:
    rows = max(1, math.ceil(n_boxes / max_per_row))
    return Grid(n_boxes, math.ceil(n_boxes / rows), rows)


def _short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _rounded_rect(x0: float, y0: float, x1: float, y1: float, rx: float, ry: float) -> str:
    def n(v: float) -> str:
        return f"{v:.4g}"

    return (
        f"M {n(x0 + rx)} {n(y0)} L {n(x1 - rx)} {n(y0)} Q {n(x1)} {n(y0)} {n(x1)} {n(y0 + ry)} "
        f"L {n(x1)} {n(y1 - ry)} Q {n(x1)} {n(y1)} {n(x1 - rx)} {n(y1)} "
        f"L {n(x0 + rx)} {n(y1)} Q {n(x0)} {n(y1)} {n(x0)} {n(y1 - ry)} "
        f"L {n(x0)} {n(y0 + ry)} Q {n(x0)} {n(y0)} {n(x0 + rx)} {n(y0)} Z"
    )



def _title(plan: RunPlan) -> str:
    mode, n = plan.mode, plan.n_blocks
    n_frozen = len(plan.frozen_blocks)
    if plan.recipe == "gradual":
        return f"Gradual unfreezing (ULMFiT): the {HEAD_NAME} in epoch 1, then one more block each epoch"
    if plan.recipe == "discriminative":
        return f"Discriminative rates (ULMFiT): each block at the rate of the one above / {recipes.DISCRIMINATIVE_DIVISOR:g}"
    if plan.recipe == "surgical" and len(plan.trainable_blocks) == 1:
        return f"Surgical fine-tuning: only {plan.trainable_blocks[0]} of {n} blocks trains, with the {HEAD_NAME}"
    if plan.recipe == "adabn":
        return f"AdaBN: all {n} blocks frozen, BatchNorm statistics re-estimated; only the {HEAD_NAME} trains"
    lp = "LP-FT · " if plan.recipe == "lp-ft" else ""
    if mode is Mode.FINETUNE:
        return f"{lp}{mode_label(mode)} ({depth_label(plan)}): {n_frozen} of {n} blocks frozen"
    if mode is Mode.FROZEN:
        return f"{mode_label(mode)}: all {n} blocks frozen, only the {HEAD_NAME} trains"
    return f"{mode_label(mode)}: all {n} blocks train from random weights"


def _recipe_tag(plan: RunPlan, i: int) -> str | None:
    """What the recipe says about block i, in a few words (None: the plain "frozen"/"trains")."""
    block = plan.blocks[i]
    if plan.recipe == "adabn":
        return "frozen · BN adapts"
    if block.frozen:
        return None
    if plan.recipe == "gradual":
        return f"from epoch {block.unfreeze_epoch}"
    if plan.recipe == "discriminative":
        return f"lr / {recipes.DISCRIMINATIVE_DIVISOR:g}<sup>{plan.n_blocks - i}</sup>"
    if plan.recipe == "surgical":
        return "tuned"
    return None


def block_diagram(plan: RunPlan, max_per_row: int = 8) -> go.Figure:
    """Frozen blocks grey with "frozen", trainable ones in the mode's colour, the new head last in HEAD_COLOR.
    A recipe adds what it does to each box: the epoch a block unfreezes, its learning rate, "tuned", "BN adapts".
    Each box shape is named "block:<name>" or "head:<name>" (for tests)."""
    mode = plan.mode
    names = [b.name for b in plan.blocks]
    n_frozen = len(plan.frozen_blocks)
    title = _title(plan)
    subtitle = trainable_summary(plan.trainable_params, plan.total_params)
    boxes = [{"name": b.name, "params": b.params, "kind": "frozen" if b.frozen else "trainable",
              "tag": _recipe_tag(plan, i)} for i, b in enumerate(plan.blocks)]
    boxes.append({"name": HEAD_NAME, "params": plan.head_params, "kind": "head"})
    g = grid(len(boxes), max_per_row)
    n_boxes, rows, per_row = g.n_boxes, g.rows, g.per_row
    w, h, gap, row_gap, pitch_x, pitch_y = g.w, g.h, g.gap, g.row_gap, g.pitch_x, g.pitch_y

    rx, ry = 0.12, 0.14
    font = 15 if per_row <= 5 else (13 if per_row <= 7 else 12)
    name_limit = 14 if per_row <= 5 else 11

    trainable_fill, trainable_line = tint(mode_color(mode)), mode_color(mode)
    styles = {
        "frozen": (FROZEN_FILL, FROZEN_LINE, "frozen"),
        "trainable": (trainable_fill, trainable_line, "random init" if mode is Mode.SCRATCH else "trains"),
        "head": (tint(HEAD_COLOR), HEAD_COLOR, "new · trains"),
    }

    fig = go.Figure()
    centers_x, centers_y, hover = [], [], []
    for i, box in enumerate(boxes):
        c = i % per_row
        x0, y0, x1, y1 = g.box(i)
        fill, line, tag = styles[box["kind"]]
        fig.add_shape(
            type="path",
            path=_rounded_rect(x0, y0, x1, y1, rx, ry),
            fillcolor=fill,
            line={"color": line, "width": 3 if box["kind"] == "head" else 2},
            layer="below",
            name=f"{'head' if box['kind'] == 'head' else 'block'}:{box['name']}",
        )
        size = format_params(box["params"]) if box["params"] is not None else ""
        label = f"<b>{_short(box['name'], name_limit)}</b>"
        label += f"<br>{size}" if size else "<br> "
        label += f"<br>{box.get('tag') or tag}"
        fig.add_annotation(
            x=(x0 + x1) / 2,
            y=(y0 + y1) / 2,
            text=label,
            showarrow=False,
            font={"size": font, "color": "#555" if box["kind"] == "frozen" else "#111"},
            name=f"label:{box['name']}",
        )
        centers_x.append((x0 + x1) / 2)
        centers_y.append((y0 + y1) / 2)
        hover.append(
            f"{box['name']}<br>{format_params(box['params'])} params"
            f"<br>{'frozen' if box['kind'] == 'frozen' else 'trainable'}"
            + (f" · {box['tag']}" if box.get("tag") else "")
        )

        # Connector to the next box.
        if i + 1 < n_boxes:
            ym = (y0 + y1) / 2
            if c + 1 < per_row:
                fig.add_annotation(
                    x=x1 + gap - 0.02, y=ym, ax=x1 + 0.02, ay=ym,
                    xref="x", yref="y", axref="x", ayref="y",
                    showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=2, arrowcolor="#666",
                    text="",
                )
            else:  # wrap: right, down, back left, down, into the next row's first box
                y_mid = y0 - row_gap / 2
                y_next = ym - pitch_y
                xl = -gap / 2
                fig.add_shape(
                    type="path",
                    path=f"M {x1:.4g} {ym:.4g} L {x1 + gap / 2:.4g} {ym:.4g} L {x1 + gap / 2:.4g} {y_mid:.4g} "
                    f"L {xl:.4g} {y_mid:.4g} L {xl:.4g} {y_next:.4g}",
                    line={"color": "#666", "width": 2},
                    name="wrap",
                )
                fig.add_annotation(
                    x=-0.02, y=y_next, ax=xl, ay=y_next,
                    xref="x", yref="y", axref="x", ayref="y",
                    showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=2, arrowcolor="#666",
                    text="",
                )

    # input / output markers
    fig.add_annotation(
        x=-0.06, y=-h / 2, text="image<br>→", showarrow=False, xanchor="right", font={"size": font + 1, "color": "#444"}
    )
    last_r, last_c = divmod(n_boxes - 1, per_row)
    fig.add_annotation(
        x=last_c * pitch_x + w + 0.06, y=-last_r * pitch_y - h / 2, text="→ class<br>scores",
        showarrow=False, xanchor="left", font={"size": font + 1, "color": "#444"},
    )

    # invisible hover targets + legend keys
    fig.add_trace(
        go.Scatter(
            x=centers_x, y=centers_y, mode="markers", marker={"size": 40, "opacity": 0},
            hovertext=hover, hoverinfo="text", showlegend=False, name="blocks",
        )
    )
    for key, label in (("frozen", "frozen (weights fixed)"), ("trainable", "trainable"), ("head", "new head")):
        if key == "frozen" and n_frozen == 0:
            continue
        if key == "trainable" and n_frozen == len(names):
            continue
        fill, line, _ = styles[key]
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name=label,
                marker={"symbol": "square", "size": 16, "color": fill, "line": {"color": line, "width": 2}},
            )
        )

    span_x = per_row * pitch_x - gap
    fig.update_xaxes(visible=False, range=[-0.95, span_x + 0.95], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-(rows - 1) * pitch_y - h - 0.25, 0.25], fixedrange=True)
    style_figure(fig, title, subtitle=subtitle, height=170 + 130 * rows)
    fig.update_layout(
        legend={"orientation": "h", "y": -0.02, "x": 0.5, "xanchor": "center", "yanchor": "top"},
        margin={"l": 20, "r": 20, "t": 100, "b": 50},
        hovermode="closest",
    )
    return fig
