"""The transfer gap across runs: modes side by side, labels per class, freeze depths; means over seeds
with their spread, and the seed count said when it differs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from tl_core.presentation.chart_style import FONT_SIZE, add_chance, classes_of, pct_axis, style_figure, what_was_run, empty_figure
from tl_core.presentation.formatting import MODE_LABELS, format_pct, mode_color, mode_label
from tl_core.runs import comparison


def _error_bars(cells: Sequence[comparison.Cell]) -> dict[str, Any]:
    return {"type": "data", "array": [c.std for c in cells], "visible": any(c.n > 1 for c in cells),
            "thickness": 2, "width": 6}


def _seeds_note(cells: Sequence[comparison.Cell]) -> str:
    """How many seeds stand behind the points: one count when every point has it, else the range (a cancelled
    sweep leaves some points with fewer)."""
    counts = sorted({c.n for c in cells}) or [1]
    if counts[-1] == 1:
        return "one seed each: run several seeds for error bars"
    seeds = f"{counts[0]}\u2013{counts[-1]} seeds (hover a point for its own)" if len(counts) > 1 else f"{counts[0]} seeds"
    return f"mean \u00b1 std over {seeds}"


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
        if cell.depth_label:
            name += f" ({cell.depth_label})"
        if cell.mode != "frozen":
            name += "<br>(same short budget)" if cell.budget == "fixed" else "<br>(trained to convergence)"
        fig.add_trace(go.Bar(
            x=[name], y=[cell.mean], name=name, marker={"color": mode_color(cell.mode),
                                                        "pattern": {"shape": "" if cell.healthy else "/"}},
            error_y=_error_bars([cell]), text=[_cell_text(cell)], textposition="outside",
            textfont={"size": FONT_SIZE + 2}, cliponaxis=False, meta=cell.mode,
            customdata=[[cell.n]], hovertemplate=name + ": %{y:.1%} (%{customdata[0]} seeds)<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.25, showlegend=False)
    fig.update_xaxes(title_text="training mode")
    what = what_was_run([r for c in picked for r in c.runs])
    pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.12)
    chance = add_chance(fig, len(classes_of(picked[0].runs) or []) or None, label=False)
    subtitle = f"Test accuracy at the epoch validation chose, {_seeds_note(picked)}" + (
        f", {lpc} labels per class" if lpc is not None else "") + (f"; {chance}." if chance else ".")
    return style_figure(fig, f"Transfer gap: {what}" if what else "Transfer gap", subtitle=subtitle, height=500)


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
        name = mode_label(mode) + (" (to convergence)" if mode != "frozen" and cells_[-1].budget == "converge" else "")
        fig.add_trace(go.Scatter(
            x=[lpc for lpc, _ in pts], y=[c.mean for c in cells_], name=name, mode="lines+markers",
            error_y=_error_bars(cells_), line={"color": mode_color(mode), "width": 3},
            marker={"size": 11, "symbol": ["circle" if c.healthy else "x" for c in cells_]}, meta=mode,
            customdata=[[c.n, c.depth if c.depth is not None else "-"] for c in cells_],
            hovertemplate=name + "<br>%{x} labels/class: %{y:.1%} (%{customdata[0]} seeds, k=%{customdata[1]})"
                                 "<extra></extra>"))
    for mode in comparison.PRETRAINED_MODES:
        at = comparison.crossover(all_cells, mode)
        if at is not None:
            fig.add_vline(x=at, line_dash="dot", line_color=mode_color(mode), line_width=2,
                          annotation_text=f"scratch catches {MODE_LABELS[mode].split(' (')[0].lower()}",
                          annotation_position="top right", annotation_font={"size": FONT_SIZE - 3,
                                                                            "color": mode_color(mode)})
    lpcs = [lpc for lpc, _ in groups]
    pad = 0.08 * max(math.log10(lpcs[-1] / lpcs[0]), 1.0)  # the axis ends just past the data, on a log scale
    fig.update_xaxes(title_text="labels per class (training items per class)", type="log",
                     tickmode="array", tickvals=lpcs, ticktext=[str(v) for v in lpcs],
                     range=[math.log10(lpcs[0]) - pad, math.log10(lpcs[-1]) + pad])
    pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.05)
    add_chance(fig, len(classes_of(all_cells[0].runs) or []) or None)
    what = what_was_run([r for c in all_cells for r in c.runs])
    return style_figure(fig, f"{title} {what}" if what else title, height=500,
                  subtitle=f"Test accuracy, {_seeds_note(all_cells)}. Pretraining helps most when labels are scarce.")


def freeze_sweep(runs: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Test accuracy vs freeze depth k for fine-tuning (Yosinski et al. 2014), error bars over seeds; the frozen
    and from-scratch cells at the same labels per class as dotted reference lines."""
    all_cells = comparison.cells(runs)
    title = "Freeze-depth sweep"
    tuned = [c for c in all_cells if c.depth is not None]
    if not tuned:
        return empty_figure("No completed fine-tunes with a freeze depth yet.", title)
    lpc = tuned[-1].labels_per_class
    group = comparison.by_labels(all_cells)[lpc]
    tuned = sorted((c for c in group if c.depth is not None),
                   key=lambda c: c.depth)
    by_k: dict[int, comparison.Cell] = {}
    for c in tuned:  # one cell per depth: the one with the most seeds
        if c.depth not in by_k or c.n > by_k[c.depth].n:
            by_k[c.depth] = c
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
    pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.05)
    add_chance(fig, len(classes_of(tuned[0].runs) or []) or None)
    what = what_was_run([r for c in tuned for r in c.runs])
    subtitle = (f"Test accuracy, {_seeds_note(tuned)}" + (f", {lpc} labels per class" if lpc is not None else "")
                + ". Deeper k = more pretrained blocks kept.")
    return style_figure(fig, f"{title}: {what}" if what else title, subtitle=subtitle, height=500)


