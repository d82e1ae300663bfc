"""The charts of a lesson: the room's predictions (a clicker's histogram) and the class's result, each student's run
a dot and the class's mean with its spread, or the curve the room draws over the lesson's values. Pure functions
of the lesson and the class's records: no page, no database, so the tests read the figures directly.
"""

from __future__ import annotations

import random
import textwrap

import plotly.graph_objects as go

from tl_core.lessons import NEVER, Lesson
from tl_core.presentation.chart_style import FONT_SIZE, bottom_legend, empty_figure, pct_axis, style_figure
from tl_core.runs import lesson_results as results
from tl_core.runs.classroom import Student, StudentRun

#: Okabe-Ito, readable by colour-blind students: one colour per arm, in the lesson's order.
ARM_COLORS = ("#0072B2", "#CC79A7", "#E69F00", "#009E73", "#56B4E9", "#D55E00")
PREDICTED = "#9AA5B1"
ANSWER = "#009E73"
CHART_HEIGHT = 380  # two charts side by side under the lesson's header fit a 1280x800 projector


def _tight(fig: go.Figure, bottom: int | None = None) -> go.Figure:
    """Less room around the plot than a page's chart: two of these share a projector with the lesson's header."""
    fig.update_layout(margin={"t": 84, "l": 64, "r": 24, **({"b": bottom} if bottom else {"b": 60})})
    return fig


def wrap(label: str, width: int = 18) -> str:
    """A label over lines of at most `width` characters (plotly breaks lines at <br> only)."""
    return "<br>".join(textwrap.wrap(label, width)) or label


def short_choices(lesson: Lesson) -> list[str]:
    """The x labels of the predictions: a value of the setting ("10", "> 50" for not even the last), or an option's
    own words, wrapped."""
    if lesson.prediction.kind in ("best", "meet"):
        return [f"> {lesson.values[-1]}" if name == NEVER else name for name, _ in lesson.choices]
    return [wrap(label) for _, label in lesson.choices]


def arm_color(lesson: Lesson, arm: str) -> str:
    names = [a.name for a in lesson.arms]
    return ARM_COLORS[names.index(arm) % len(ARM_COLORS)] if arm in names else "#555"


def predictions_chart(lesson: Lesson, students: list[Student], answer: results.Answer | None = None,
                      height: int = CHART_HEIGHT) -> go.Figure:
    """How many students predicted each answer; at the reveal (`answer`), the class's answer is marked."""
    counts = results.prediction_counts(lesson, students)
    made = sum(c for _, _, c in counts)
    if not made:
        return empty_figure("No prediction yet: the bars grow as students commit theirs.", "The room's predictions")
    gap = lesson.prediction.kind == "gap"
    right = str(answer.value) if answer is not None and not gap else None
    colors = [ANSWER if right == name else PREDICTED for name, _, _ in counts]
    x = [float(name) for name, _, _ in counts] if gap else short_choices(lesson)
    fig = go.Figure(go.Bar(x=x, y=[c for _, _, c in counts], marker_color=colors, text=[c or "" for _, _, c in counts],
                           textposition="outside", hovertemplate="%{x}: %{y} student(s)<extra></extra>",
                           name="predictions"))
    if gap:
        fig.update_xaxes(title_text="predicted gap (points of test accuracy)", dtick=lesson.prediction.step * 2,
                         range=[lesson.prediction.low - lesson.prediction.step,
                                lesson.prediction.high + lesson.prediction.step])
        if answer is not None:
            fig.add_vline(x=float(answer.value), line_color=ANSWER, line_width=4,
                          annotation_text=f"measured {float(answer.value):+.0f}", annotation_font_color=ANSWER,
                          annotation_font_size=FONT_SIZE)
    if lesson.prediction.kind in ("best", "meet"):
        fig.update_xaxes(title_text=lesson.axis_title, type="category")
    fig.update_yaxes(title_text="students", rangemode="tozero", dtick=max(1, round(max(c for *_, c in counts) / 5)))
    fig.update_layout(showlegend=False, bargap=0.15)
    subtitle = f"{made} prediction{'s' if made != 1 else ''}"
    if answer is not None:
        n_right, n_made = results.right_count(lesson, students, answer)
        subtitle += f" · green: what the class measured ({n_right} of {n_made} predicted it)"
    return _tight(style_figure(fig, "The room's predictions", subtitle, height=height))


def _jitter(key: str, width: float = 0.18) -> float:
    """A small, fixed horizontal offset per run, so a student's dot stays put as the chart is redrawn."""
    return random.Random(key).uniform(-width, width)


def results_chart(lesson: Lesson, runs: list[StudentRun], answer: results.Answer | None = None,
                  height: int = CHART_HEIGHT) -> go.Figure:
    """Each counted run as a dot and each arm's mean with its spread (std over the students); with a varied setting,
    one line per arm over the lesson's values: the curve the room draws."""
    stats = results.arm_stats(lesson, runs)
    title = "The class's result"
    if not stats:
        return empty_figure("No result yet: each finished run adds a dot.", title)
    fig = go.Figure()
    counted = results.counted(runs)
    n_students = len({r.session for r in counted})
    if lesson.vary == "seed":
        labels = [a.label for a in lesson.arms]
        for i, arm in enumerate(lesson.arms):
            mine = [r for r in counted if r.arm == arm.name]
            color = arm_color(lesson, arm.name)
            fig.add_trace(go.Scatter(x=[i - 0.12 + _jitter(r.session + r.arm, 0.12) for r in mine],
                                     y=[r.test_acc for r in mine],
                                     mode="markers", marker={"color": color, "size": 9, "opacity": 0.55},
                                     name=f"{arm.label}: one student each", showlegend=False,
                                     hovertemplate="%{y:.1%}<extra>one student's run</extra>"))
        for s in stats:
            i = [a.name for a in lesson.arms].index(s.arm)
            fig.add_trace(go.Scatter(x=[i + 0.15], y=[s.mean], mode="markers+text", name=s.label, showlegend=False,
                                     marker={"color": arm_color(lesson, s.arm), "size": 22, "symbol": "line-ew",
                                             "line": {"width": 5, "color": arm_color(lesson, s.arm)}},
                                     error_y={"type": "data", "array": [s.std], "visible": s.n > 1, "thickness": 3,
                                              "width": 14, "color": arm_color(lesson, s.arm)},
                                     text=[f"{100 * s.mean:.0f}%"], textposition="middle right",
                                     textfont={"size": FONT_SIZE + 2},
                                     hovertemplate=f"{s.label}: %{{y:.1%}} \u00b1 {100 * s.std:.0f} over {s.n}"
                                                   "<extra>mean \u00b1 std</extra>"))
        fig.update_xaxes(tickmode="array", tickvals=list(range(len(labels))), tickangle=0,
                         ticktext=[wrap(x, 14 if len(labels) > 2 else 24) for x in labels],
                         range=[-0.6, len(labels) - 0.4])
    else:
        values = list(lesson.values)
        for arm in lesson.arms:
            color = arm_color(lesson, arm.name)
            mine = [r for r in counted if r.arm == arm.name]
            fig.add_trace(go.Scatter(
                x=[values.index(lesson.value_of(r.config or {})) + _jitter(r.session + r.arm, 0.1) for r in mine
                   if lesson.value_of(r.config or {}) in values],
                y=[r.test_acc for r in mine if lesson.value_of(r.config or {}) in values], mode="markers",
                marker={"color": color, "size": 8, "opacity": 0.5}, showlegend=False,
                hovertemplate="%{y:.1%}<extra>one student's run</extra>"))
            line = [s for s in stats if s.arm == arm.name]
            fig.add_trace(go.Scatter(x=[values.index(s.value) for s in line], y=[s.mean for s in line],
                                     mode="lines+markers", name=arm.label, line={"color": color, "width": 4},
                                     marker={"size": 11},
                                     error_y={"type": "data", "array": [s.std for s in line], "thickness": 2,
                                              "width": 8, "visible": any(s.n > 1 for s in line)},
                                     customdata=[s.n for s in line],
                                     hovertemplate=f"%{{y:.1%}}, %{{customdata}} student(s)<extra>{arm.label}</extra>"))
        fig.update_xaxes(tickmode="array", tickvals=list(range(len(values))), ticktext=[str(v) for v in values],
                         range=[-0.5, len(values) - 0.5], title_text=lesson.axis_title)
        if answer is not None and answer.value in values:
            fig.add_vline(x=values.index(answer.value), line_color=ANSWER, line_width=3, line_dash="dot",
                          annotation_text="the class's answer", annotation_font_color=ANSWER,
                          annotation_position="bottom right")
    top = max(r.test_acc for r in counted)
    pct_axis(fig.update_yaxes, "test accuracy", upper=min(1.0, top + 0.12))
    spread = "mean \u00b1 std over" if any(s.n > 1 for s in stats) else "one run each so far:"
    subtitle = f"{spread} {n_students} student{'s' if n_students != 1 else ''} · a dot is one student's run"
    styled = style_figure(fig, title, subtitle, height=height)
    if lesson.vary == "seed":
        return _tight(styled)
    return _tight(bottom_legend(styled), bottom=styled.layout.margin.b)  # room for the arms' legend below


def figure_html(fig: go.Figure) -> str:
    """The chart as one self-contained HTML page (plotly.js inside, so it opens without a network)."""
    return fig.to_html(full_html=True, include_plotlyjs=True)
