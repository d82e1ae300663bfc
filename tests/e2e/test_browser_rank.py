"""The Model page's backbone ranking in a real headless chromium against the real server (conftest.py): a student
ranks the backbones on animals, watches the progress, and reads the sorted table. Takes the screenshot rank.png.

Run: .venv/bin/python -m pytest -q -m e2e tests/e2e/test_browser_rank.py
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from test_browser import SHOTS, configure, new_page, open_app, script_done, settle

pytestmark = pytest.mark.e2e

RANK_TIMEOUT_MS = 240_000


def grid_rows(page, key: str) -> list[list[str]]:
    """The cells of the st.dataframe inside element `key`, read from the grid's accessible table (what is drawn
    is a canvas)."""
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel + ' [data-testid="stDataFrame"] [role="row"]')].slice(1)
        .map(r => [...r.querySelectorAll('[role="gridcell"]')].map(c => c.innerText.trim()))""", f".st-key-{key}")


def test_model_rank_table(new_context, app_url):
    page = new_page(new_context)
    open_app(page, app_url)
    configure(page, data="animals", labels=10, val=5, epochs=2, image_size=32)
    rank = page.locator(".st-key-rank_start").get_by_role("button", name="Rank backbones")
    expect(rank).to_be_visible()
    expect(page.get_by_text("only rank models").first).to_be_visible()
    box = page.locator(".st-key-rank_per_class input")
    script_done(page, lambda: (box.fill("10"), box.press("Enter")))
    script_done(page, page.locator(".st-key-rank_random label").first.click)
    expect(page.locator(".st-key-rank_random input")).to_be_checked()

    from tl_core.engine.ranking import available

    n = 2 * len(available("vision")[0])  # every bundled vision backbone and its random-init copy
    rank.click()
    expect(page.get_by_text(re.compile(rf"{n} backbones ranked on 100 training items")).first).to_be_visible(
        timeout=RANK_TIMEOUT_MS)
    settle(page)  # the fragment's last draw and the full rerun after it may show the table twice for a moment
    expect(page.locator('.st-key-rank_view [data-testid="stDataFrame"]')).to_have_count(1)
    page.wait_for_function("""() => document.querySelectorAll(
        '.st-key-rank_view [data-testid="stDataFrame"] [role="row"] [role="gridcell"]').length >= 4""")
    rows = grid_rows(page, "rank_view")
    assert len(rows) == n and len(rows[0]) == 6, rows
    # columns: #, backbone, weights, LogME, H-score, seconds (test acc and runs once a run exists)
    assert [r[0] for r in rows] == [str(i) for i in range(1, n + 1)], rows
    assert sorted(r[2] for r in rows) == ["pretrained"] * (n // 2) + ["random init"] * (n // 2), rows
    logme = [float(r[3]) for r in rows]
    assert logme == sorted(logme, reverse=True), rows
    expect(page.get_by_text(re.compile(r"at least 3 of these backbones")).first).to_be_visible()

    # One click trains the feature-extraction runs that check the ranking; their test accuracy joins the table.
    check = page.locator(".st-key-rank_check_start").get_by_role("button")
    expect(check).to_contain_text(f"({n} missing)")
    check.click()
    expect(page.get_by_text("checking the ranking").first).to_be_visible()
    expect(page.locator(".st-key-rank_check_start")).to_have_count(0, timeout=RANK_TIMEOUT_MS)
    expect(page.get_by_text("checking the ranking")).to_have_count(0, timeout=RANK_TIMEOUT_MS)
    settle(page)
    page.wait_for_function("""() => document.querySelectorAll('.st-key-rank_view [data-testid="stDataFrame"]'
        + ' [role="row"]:nth-child(2) [role="gridcell"]').length === 8""")
    rows = grid_rows(page, "rank_view")
    accs = {(r[1], r[2]): r[6] for r in rows}  # test acc ("80.0%"), an en dash where every run was unhealthy
    assert all(10 <= float(accs[name, "pretrained"].rstrip("%")) <= 100
               for name in ("mobilenet_v2", "efficientnet_lite0")), rows
    assert all(a and a != "None" for a in accs.values()), rows  # an en dash where no run measured it
    expect(page.get_by_text(re.compile(r"Kendall's tau between LogME|so far\)")).first).to_be_visible()
    view = page.locator(".st-key-rank_view")
    page.add_style_tag(content='[data-testid="stHeader"] { display: none; }')  # the sticky top bar would cover it
    view.scroll_into_view_if_needed()
    page.mouse.move(5, 5)  # no hover tooltip over the table
    SHOTS.mkdir(parents=True, exist_ok=True)
    view.screenshot(path=str(SHOTS / "rank.png"), animations="disabled")

    # Do better ImageNet models transfer better? With one seed, the check's runs are all there: the chart draws
    # ImageNet top-1 against their accuracy with r and tau, and the sentence says what four points can show.
    imagenet = page.locator(".st-key-imagenet_view")
    seeds = page.locator(".st-key-imagenet_seeds input")
    script_done(page, lambda: (seeds.fill("1"), seeds.press("Enter")))
    expect(imagenet.get_by_text(re.compile(rf"Every run of this check is in the run store \({n} runs\)"))).to_be_visible()
    expect(imagenet.locator(".st-key-imagenet_chart")).to_contain_text("Pearson r (ImageNet top-1 vs frozen)")
    expect(imagenet.locator(".st-key-imagenet_chart")).to_contain_text("ImageNet top-1")
    expect(imagenet.locator('[data-testid="stDataFrame"]')).to_be_visible()  # the table under the sentence
    page.set_viewport_size({"width": page.viewport_size["width"], "height": 1600})  # all of it painted at once
    settle(page)
    imagenet.scroll_into_view_if_needed()
    page.mouse.move(5, 5)
    imagenet.screenshot(path=str(SHOTS / "imagenet.png"), animations="disabled")
