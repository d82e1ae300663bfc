"""Do better ImageNet models transfer better? The chart and the sentence that read a TransferTable
(tl_core.runs.imagenet_transfer) for a class.

ImageNet top-1 on x, test accuracy on y: one point per pretrained backbone with its spread over seeds, the same
architectures with random weights as hollow points at their pretrained selves' x (what ImageNet pretraining adds,
read straight up), fine-tuned runs where the store holds some, and the statistics with their p-values and n in the
subtitle. Four points make a trend visible, never proven: the sentence says what the class may conclude and what it
may not, in the words the data earns (a domain far from ImageNet, differences inside the seed spread).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from scipy import stats

from tl_core.presentation.chart_style import FONT_SIZE, add_chance, empty_figure, pct_axis, style_figure
from tl_core.presentation.formatting import mode_color, mode_label
from tl_core.runs.imagenet_transfer import Row, TransferTable, critical_r

TITLE = "Do better ImageNet models transfer better?"
PAPER = ("Kornblith et al. (2019) found r = 0.99 between ImageNet top-1 and the accuracy of a linear head on fixed "
         "features over 16 networks and 12 data sets")
GAIN_FLOOR = 0.05  # pretrained features less than 5 points ahead of random ones: ImageNet brings this data little
_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
            10: "ten", 11: "eleven", 12: "twelve"}


def _number(n: int) -> str:
    return _NUMBERS.get(n, str(n))


def _p(p: float | None) -> str:
    if p is None:
        return "p = –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _data(name: str) -> str:
    return name.split(":", 1)[1] if name.startswith("builtin:") else name


def stats_line(table: TransferTable) -> str:
    """'Pearson r (top-1 vs frozen) = +0.97, p = 0.03, n = 4 · Kendall's τ (LogME vs frozen) = +0.71, p = 0.01,
    n = 8': each statistic with its p-value and the points behind it, or why there is none yet."""
    r, k = table.pearson, table.kendall
    left = (f"Pearson r (ImageNet top-1 vs frozen) = {r['r']:+.2f}, {_p(r['p_value'])}, n = {r['n']}"
            if r["r"] is not None else f"Pearson r: needs 3 pretrained backbones with runs (n = {r['n']})")
    right = (f"Kendall's τ (LogME vs frozen) = {k['kendall_tau']:+.2f}, {_p(k['p_value'])}, n = {k['n']}"
             if k["kendall_tau"] is not None else f"Kendall's τ: needs 3 backbones with runs (n = {k['n']})")
    return f"{left} · {right}"


def _seeds_words(rows: list[Row]) -> str:
    counts = sorted({r.frozen.n for r in rows if r.frozen.n})
    if not counts:
        return ""
    if counts[-1] == 1:
        return "one seed each: error bars need two"
    seeds = f"{counts[0]}–{counts[-1]}" if len(counts) > 1 else f"{counts[0]}"
    return f"mean ± std over {seeds} seeds"


def conclusion(table: TransferTable) -> str:
    """One sentence on what the class may conclude from these points, and what it may not."""
    points = table.points()
    n = len(points)
    if n < 3:
        return (f"{_number(n).capitalize() if n else 'No'} pretrained backbone{'' if n == 1 else 's'} with an ImageNet "
                "accuracy and a feature-extraction result yet: a trend needs at least three, so train the missing "
                "runs.")
    r, p = table.pearson["r"], table.pearson["p_value"]
    families = len(table.families())
    head = f"{_number(n).capitalize()} backbones from {_number(families)} famil{'y' if families == 1 else 'ies'}"
    if r is None:
        text = f"{head} all reach the same test accuracy here: there is no trend to read"
    elif r > 0 and p is not None and p < 0.05:
        text = (f"{head}: the better ImageNet models transfer better here (r = {r:+.2f}, {_p(p)}), a trend on "
                f"{_number(n)} points, not a law")
    elif r > 0:
        text = (f"{head}: the trend points that way (r = {r:+.2f}) but is not proven ({_p(p)}; with {_number(n)} "
                f"points only |r| above {critical_r(n):.2f} would be)")
    else:
        text = f"{head}: here the better ImageNet models do not transfer better (r = {r:+.2f}, {_p(p)})"
    text += f"; {PAPER}."
    tau = table.kendall_top1["kendall_tau"]
    if r is not None and r > 0 and tau is not None and tau <= 0:
        text += (f" By rank, ImageNet top-1 and accuracy agree no better than chance (Kendall's τ = {tau:+.2f}): "
                 "a point far from the others carries r.")
    gain = table.pretraining_gain()
    if gain is not None and gain < GAIN_FLOOR:
        ahead = round(gain * 100)
        near = "do as well as" if ahead <= 0 else f"come within {ahead} point{'' if ahead == 1 else 's'} of"
        text += (f" On {_data(table.data)} the random-init copies {near} the "
                 "pretrained backbones: ImageNet features help little on this data at these settings (a domain far "
                 "from ImageNet, or images far smaller than the networks saw), so ImageNet accuracy has little to "
                 "predict.")
    spread = [r.frozen.std for r in points if r.frozen.std is not None]
    means = [r.frozen.mean for r in points]
    if spread and max(means) - min(means) < max(spread):
        text += (" The pretrained backbones lie closer together than one backbone's spread over seeds: their order "
                 "may not hold on other seeds.")
    return text


def _fit_line(points: list[Row]) -> go.Scatter | None:
    """The least-squares line through the frozen points (scipy.stats.linregress), drawn across their x range."""
    xs, ys = [r.imagenet_acc1 for r in points], [r.frozen.mean for r in points]
    if len(points) < 3 or max(xs) == min(xs):
        return None
    fit = stats.linregress(xs, ys)
    ends = [min(xs), max(xs)]
    return go.Scatter(x=ends, y=[fit.intercept + fit.slope * x for x in ends], mode="lines", name="least-squares line",
                      line={"color": mode_color("frozen"), "width": 2, "dash": "dot"}, hoverinfo="skip",
                      meta="fit")


def _error_bars(rows: list[Row], mode: str) -> dict[str, Any]:
    spreads = [getattr(r, mode).std or 0.0 for r in rows]
    return {"type": "data", "array": spreads, "visible": any(spreads), "thickness": 2, "width": 6}


def _trace(rows: list[Row], xs: list[float], mode: str, name: str, symbol: str, color: str,
           label: bool) -> go.Scatter:
    measures = [getattr(r, mode) for r in rows]
    return go.Scatter(
        x=xs, y=[m.mean for m in measures], name=name, mode="markers+text" if label else "markers",
        text=[r.name for r in rows] if label else None, textposition="top center",
        textfont={"size": FONT_SIZE - 3}, error_y=_error_bars(rows, mode), meta=name, cliponaxis=False,
        marker={"size": 14, "symbol": symbol, "color": color, "line": {"color": color, "width": 2}},
        customdata=[[r.name, m.n, r.logme] for r, m in zip(rows, measures)],
        hovertemplate="%{customdata[0]}<br>" + name + ": %{y:.1%} (%{customdata[1]} seeds)<br>ImageNet top-1 "
                      "%{x:.1f}%<br>LogME %{customdata[2]:.3f}<extra></extra>")


def imagenet_transfer(table: TransferTable) -> go.Figure:
    """The scatter described in the module docstring; an empty figure that says why while no point exists."""
    points = table.points()
    title = f"{TITLE} {_data(table.data)}"
    if not points:
        return empty_figure("No feature-extraction runs of a pretrained backbone yet: train them to place the points.",
                            title)
    top1 = {r.name: r.imagenet_acc1 for r in points}
    fig = go.Figure()
    line = _fit_line(points)
    if line is not None:
        fig.add_trace(line)
    fig.add_trace(_trace(points, [r.imagenet_acc1 for r in points], "frozen", mode_label("frozen"), "circle",
                         mode_color("frozen"), True))
    tuned = table.points("finetune")
    if tuned:
        fig.add_trace(_trace(tuned, [r.imagenet_acc1 for r in tuned], "finetune",
                             f"{mode_label('finetune')}, stored runs", "diamond", mode_color("finetune"), False))
    random = [r for r in table.rows if not r.pretrained and r.frozen.mean is not None and r.name in top1]
    if random:
        fig.add_trace(_trace(random, [top1[r.name] for r in random], "frozen",
                             "the same network, random weights (at its pretrained x)", "circle-open", "#555555",
                             False))
    xs = [r.imagenet_acc1 for r in points]
    pad = max(0.6, 0.12 * (max(xs) - min(xs)))
    fig.update_xaxes(title_text="ImageNet top-1 of the pretrained weights (%)", range=[min(xs) - pad, max(xs) + pad],
                     tickformat=".1f")
    pct_axis(fig.update_yaxes, "test accuracy (%)", upper=1.05)
    add_chance(fig, table.n_classes)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0})
    seeds = _seeds_words(points + random)
    subtitle = stats_line(table).replace(" · ", "<br>") + (f"<br>Test accuracy, {seeds}." if seeds else "")
    fig = style_figure(fig, title, subtitle=subtitle, height=600)
    fig.update_layout(margin={"t": 170, "b": 150})  # three lines of statistics above, the legend below
    return fig
