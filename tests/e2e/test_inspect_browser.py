"""The Inspect page in a real chromium against the real server: a fine-tune trained on the Train page, its
features before and after training, a click on a point and on a confusion-matrix cell, and the most confident
mistakes.

Shares the server (conftest.py) and the helpers of test_browser.py. Takes the screenshot inspect.png (what the
model learned) and inspect-failures.png (where it fails).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from test_browser import (_POINTS_JS, MAX_SHOT_BYTES, MAX_SHOT_HEIGHT, SHOTS, TINY, chart, configure, metric_value,
                          nav, new_page, open_app, script_done, settle, start_training, wait_completed)

pytestmark = pytest.mark.e2e

# The page coordinates and customdata of every point of the traces whose meta starts with `meta`.
_POINTS_XY_JS = """([sel, meta]) => {
    const gd = document.querySelector(sel + ':not([data-stale="true"]) .js-plotly-plot');
    const box = gd.getBoundingClientRect(), out = [];
    for (const t of gd._fullData.filter((d) => String(d.meta).startsWith(meta))) {
        const xa = gd._fullLayout[t.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[t.yaxis.replace('y', 'yaxis')];
        t.x.forEach((x, i) => out.push({x: box.left + xa._offset + xa.d2p(x),
                                        y: box.top + ya._offset + ya.d2p(t.y[i]), custom: Array.from(t.customdata[i])}));
    }
    return out; }"""


def click_point(page: Page, key: str, meta: str, index: int | None = None) -> list:
    """Click a point of the traces whose meta starts with `meta` (point `index`, else the one farthest from its
    nearest neighbour, so the click cannot land on another); a rerun follows (the chart's selection event).
    Returns the clicked point's customdata."""
    chart(page, key).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    points = page.evaluate(_POINTS_XY_JS, [f".st-key-{key}", meta])

    def room(p):
        return min(((p["x"] - q["x"]) ** 2 + (p["y"] - q["y"]) ** 2 for q in points if q is not p), default=0)

    at = points[index] if index is not None else max(points, key=room)
    page.mouse.move(at["x"], at["y"])  # hover first, as a hand does: plotly picks the point under the pointer
    page.wait_for_timeout(200)
    script_done(page, lambda: page.mouse.click(at["x"], at["y"]))
    return at["custom"]


def section_shot(page: Page, key: str, name: str) -> None:
    """One section of the page (the container of element key `key`) as a PNG; the window is stretched to the
    page's height first, as test_browser.shot does (Streamlit scrolls an inner container)."""
    viewport = page.viewport_size
    page.mouse.move(viewport["width"] - 5, viewport["height"] - 5)  # no hover label over the content
    height = page.evaluate("""() => Math.max(...[document.scrollingElement,
        ...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], .stMain')]
        .filter(Boolean).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], min(height, MAX_SHOT_HEIGHT))})
    try:
        page.wait_for_timeout(500)
        data = page.locator(f".st-key-{key}").screenshot(animations="disabled")
    finally:
        page.set_viewport_size(viewport)
    assert len(data) < 2 * MAX_SHOT_BYTES, f"{name}.png weighs {len(data)} bytes"
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.png").write_bytes(data)


def test_inspect_shows_what_the_model_learned_and_where_it_fails(new_context, app_url):
    page = new_page(new_context)
    owner = open_app(page, app_url)
    configure(page, **TINY, mode="Fine-tune")  # a fine-tune: its features move, unlike a frozen run's
    nav(page, "train", "Train")
    start_training(page)
    rid = wait_completed(page, TINY["epochs"])

    page = new_page(new_context)  # another tab, opened on the run by its URL
    script_done(page, lambda: page.goto(f"{app_url}/inspect?s={owner}&run={rid}"), timeout=90_000)
    expect(page.locator("h1").filter(has_text="Inspect")).to_be_visible()
    expect(page.locator(".st-key-inspect_run").get_by_role("combobox")).to_have_value(re.compile(rf"{rid}.*yours"))

    # ---- what the model learned: two maps of the 50 validation items, the numbers, the reading
    expect(page.locator("h2").filter(has_text="What the model learned")).to_be_visible(timeout=120_000)
    key = f"inspect_map_{rid}_pca"
    expect(chart(page, key)).to_be_visible(timeout=120_000)
    page.wait_for_function(f"() => ({_POINTS_JS})('.st-key-{key}') === 100")  # 50 items in each panel
    for label in ("k-NN accuracy before", "k-NN accuracy after"):
        assert re.fullmatch(r"\d+(\.\d)?%", metric_value(page, label)), metric_value(page, label)
    expect(page.get_by_text(re.compile(r"^Classes separate")).first).to_be_visible()
    expect(chart(page, key)).to_contain_text("Pretrained backbone (before training)")
    expect(chart(page, key)).to_contain_text("After fine-tuning")

    # clicking a point shows its image, its true and its predicted class
    custom = click_point(page, key, "after:")
    expect(page.locator(".st-key-inspect_selected h3")).to_have_text("1 selected item")
    expect(page.locator(".st-key-inspect_selected").get_by_text(f"true {custom[1]} · predicted {custom[2]}"))\
        .to_be_visible()
    expect(page.locator('.st-key-inspect_selected [data-testid="stImage"] img')).to_have_count(1)

    # ---- where it fails: a click on a cell lists exactly its items, with their probabilities
    expect(page.locator("h2").filter(has_text="Where it fails")).to_be_visible()
    cm_key = f"inspect_cm_{rid}"
    expect(chart(page, cm_key)).to_be_visible()
    cells = page.evaluate("""(sel) => { const t = document.querySelector(sel)._fullData.find((d) => d.meta === 'cells');
        return t.customdata.map((c, k) => [c[2], t.y[k], t.x[k]]); }""",  # count, true, predicted
                          f'.st-key-{cm_key}:not([data-stale="true"]) .js-plotly-plot')
    i, (n, t, p) = max(enumerate(cells), key=lambda c: (c[1][1] != c[1][2], c[1][0]))  # the biggest mistake cell
    assert n > 0, cells
    click_point(page, cm_key, "cells", index=i)
    verb = "correctly predicted as" if t == p else "predicted as"
    expect(page.locator(".st-key-inspect_cell h3")).to_have_text(f"{n} images of {t} {verb} {p}")
    shown = page.locator('.st-key-inspect_cell [data-testid="stImage"] img')
    expect(shown).to_have_count(min(n, 30))
    caption = re.compile(rf"^true {t} · {p} \(\d+%\)")
    expect(page.locator(".st-key-inspect_cell").get_by_text(caption).first).to_be_visible()

    # ---- the most confident mistakes
    expect(page.locator("h3").filter(has_text="Most confident mistakes")).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ of \d+ test images are wrong"))).to_be_visible()
    expect(page.locator('.st-key-inspect_mistakes_box [data-testid="stImage"]').first).to_be_visible()
    settle(page)
    section_shot(page, "inspect_learned", "inspect")
    section_shot(page, "inspect_fails", "inspect-failures")
