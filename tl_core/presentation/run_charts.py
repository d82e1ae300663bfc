"""One run up close: its confusion matrix, the class balance of its data, its top predictions and how
much each block moved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from tl_core.engine.plan import RunPlan

from tl_core.presentation.chart_style import CHANCE_COLOR, FONT_SIZE, pct_axis, style_figure, empty_figure
from tl_core.presentation.formatting import FROZEN_LINE, MODE_COLORS, format_pct

# ----------------------------------------------------------------------------


def confusion_matrix(
    cm: Sequence[Sequence[float]] | None,
    classes: Sequence[str] | None,
    normalize: bool = True,
    split: str = "test",
    unit: str = "items",
) -> go.Figure:
    """Heatmap with true class on y (top to bottom) and predicted class on x. A run's summary holds the matrix
    of its test split (the weights chosen on validation), so that is what the subtitle says by default.

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
    subtitle = f"{int(correct)} of {int(total)} {split} {unit} correct ({format_pct(correct / total if total else 0)})"
    side = 420 + 26 * n
    style_figure(fig, title, subtitle=subtitle, height=min(side, 1000))
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
    fig = style_figure(fig, title, subtitle=subtitle, height=440)
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
    pct_axis(fig.update_xaxes, "predicted probability (%)", upper=1.15)
    fig.update_xaxes(tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    return style_figure(fig, title, height=160 + 55 * len(items))


def block_change(block_names: Sequence[str], cka: Sequence[float] | None,
                 plan: RunPlan | Mapping | int | None) -> go.Figure:
    """How much fine-tuning changed each block: 1 - linear CKA against the pretrained network, per block.

    The run's plan (a RunPlan or its stored dict) says which blocks never trained: exactly those are labelled
    "frozen" and drawn grey (surgical fine-tuning freezes the blocks after the tuned one too); the rest take the
    fine-tune colour. A run stored without a plan gives its frozen prefix's length instead. The usual picture:
    early blocks barely move, the last ones change most.
    """
    title = "What fine-tuning changed"
    if not cka:
        return empty_figure("Not measured for this run.", title)
    names = [str(n) for n in block_names]
    if len(names) != len(cka):
        raise ValueError(f"{len(names)} block names but {len(cka)} CKA values")
    frozen = _frozen_flags(plan, len(names))
    change = [max(0.0, 1.0 - float(v)) for v in cka]
    colors = [FROZEN_LINE if frozen[i] else MODE_COLORS["finetune"] for i in range(len(names))]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=change,
            name="change",
            marker={"color": colors},
            text=["frozen" if frozen[i] else f"{v:.2f}" for i, v in enumerate(change)],  # words: no emoji font needed
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
    fig = style_figure(fig, title, subtitle=subtitle, height=420)
    fig.update_layout(margin={"t": 125})
    return fig


def _frozen_flags(plan: RunPlan | Mapping | int | None, n_blocks: int) -> list[bool]:
    """Per block, whether it never trained: from the plan, or (an old run without one) its frozen prefix."""
    if plan is None or isinstance(plan, int):
        prefix = max(0, min(int(plan or 0), n_blocks))
        return [i < prefix for i in range(n_blocks)]
    if not isinstance(plan, RunPlan):
        plan = RunPlan.from_dict(plan)
    if plan.n_blocks != n_blocks:
        raise ValueError(f"the plan has {plan.n_blocks} blocks but the chart {n_blocks}")
    return [b.frozen for b in plan.blocks]
