"""Pictures of why a model decided: Grad-CAM maps over the image, tokens coloured by their attribution.

Pure functions from the engine's results (tl_core.engine.attribution) to a plotly figure or an HTML string, tested
without a UI. The maps are drawn over the image the model saw, transparent where there is no evidence, so the
image stays readable underneath; each map is scaled between its own weakest and strongest point (what is compared
side by side is where each model looks, not how strongly).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_core.engine.attribution import CamResult, TokenResult
from tl_core.presentation.formatting import format_pct

FONT_SIZE = 16
#: No evidence is transparent, strong evidence opaque red through yellow: the image shows through the weak parts.
CAM_COLORSCALE = [[0.0, "rgba(255,255,0,0)"], [0.25, "rgba(255,230,0,0.1)"], [0.6, "rgba(255,140,0,0.4)"],
                  [1.0, "rgba(215,25,28,0.65)"]]
#: Okabe-Ito bluish green for tokens that support the class, vermillion for tokens that speak against it.
SUPPORT_RGB, AGAINST_RGB = (0, 158, 115), (213, 94, 0)


def cam_panels(panels: Sequence[tuple[str, CamResult | None]], *, image: np.ndarray | None = None,
               image_title: str = "The image", missing_text: str = "no run yet") -> go.Figure:
    """One row: the image itself, then one map per (title, result); a None result is an empty panel saying
    `missing_text` (the comparison shows what is absent). `image` defaults to the first result's image."""
    results = [r for _, r in panels if r is not None]
    if image is None and results:
        image = results[0].image
    n = len(panels) + (image is not None)
    titles = ([image_title] if image is not None else []) + [t for t, _ in panels]
    fig = make_subplots(rows=1, cols=max(1, n), subplot_titles=titles, horizontal_spacing=0.03)
    col = 1
    if image is not None:
        fig.add_trace(go.Image(z=image, hovertemplate="x %{x}, y %{y}<extra></extra>"), row=1, col=col)
        col += 1
    for title, result in panels:
        if result is None:
            fig.add_annotation(text=missing_text, showarrow=False, font={"size": FONT_SIZE - 1, "color": "#777"},
                               x=0.5, y=0.5, xref=f"x{col if col > 1 else ''} domain",
                               yref=f"y{col if col > 1 else ''} domain")
        else:
            fig.add_trace(go.Image(z=result.image, hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Heatmap(z=result.heatmap, zmin=0, zmax=1, colorscale=CAM_COLORSCALE, showscale=False,
                                     name=title.split("<br>")[0],
                                     hovertemplate="evidence %{z:.2f}<extra>" + html.escape(result.target_class)
                                     + "</extra>"), row=1, col=col)
        col += 1
    fig.update_xaxes(visible=False, showgrid=False)
    fig.update_yaxes(visible=False, showgrid=False, autorange="reversed")
    for i in range(1, n + 1):  # square pixels in every panel
        fig.update_yaxes(scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_annotations(font_size=FONT_SIZE - 1)
    fig.update_layout(template="plotly_white", height=360, margin={"l": 10, "r": 10, "t": 80, "b": 10},
                      font={"size": FONT_SIZE}, showlegend=False)
    return fig


def cam_title(label: str, result: CamResult | None) -> str:
    """A panel's title: the mode, then what the model predicted and which class the map is for."""
    if result is None:
        return label
    title = f"{label}<br>{result.predicted_class} {format_pct(result.probability)}"
    if result.target != result.predicted:
        title += f" · map for {result.target_class}"
    return title


def _rgba(score: float, peak: float) -> str:
    strength = min(1.0, abs(score) / peak) if peak > 0 else 0.0
    r, g, b = SUPPORT_RGB if score >= 0 else AGAINST_RGB
    return f"rgba({r},{g},{b},{0.85 * strength:.2f})"


def token_html(result: TokenResult) -> str:
    """The typed text with each token's background coloured by its score (green supports the class, orange speaks
    against it, stronger = more), scaled to this text's largest score; everything from the user is escaped."""
    peak = float(np.max(np.abs(result.scores))) if len(result.scores) else 0.0
    parts, pos = [], 0
    positioned = all(s >= 0 for s, _ in result.spans)
    for token, (start, end), score in zip(result.tokens, result.spans, result.scores):
        if positioned:
            parts.append(html.escape(result.text[pos:start]))
            pos = end
        else:
            parts.append(" ")
        parts.append(f'<span class="tl-token" data-score="{float(score):.4f}" title="{float(score):+.4f}" '
                     f'style="background:{_rgba(float(score), peak)};padding:0.1em 0.15em;border-radius:0.25em">'
                     f"{html.escape(token)}</span>")
    if positioned:
        parts.append(html.escape(result.text[pos:]))
    return ('<div class="tl-tokens" style="font-size:1.25rem;line-height:2.1">' + "".join(parts).strip() + "</div>")


def token_bars(result: TokenResult, title: str = "") -> go.Figure:
    """One bar per token, in reading order: how much it moved the log-probability of the explained class."""
    values = [float(s) for s in result.scores]
    labels = [f"{i + 1}. {t}" for i, t in enumerate(result.tokens)]  # numbered: a word can appear twice
    peak = max((abs(v) for v in values), default=0.0)
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker={"color": [_rgba(v, peak) for v in values],
                                                                         "line": {"color": "#555", "width": 0.5}},
                           hovertemplate="%{y}: %{x:+.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text=None)
    fig.update_xaxes(title_text=f"change in log p({result.target_class})", zeroline=True, zerolinecolor="#555")
    fig.update_layout(template="plotly_white", height=140 + 26 * len(values), font={"size": FONT_SIZE - 2},
                      margin={"l": 10, "r": 20, "t": 60 if title else 20, "b": 60},
                      title={"text": title, "font": {"size": FONT_SIZE}, "x": 0.0} if title else None)
    return fig
