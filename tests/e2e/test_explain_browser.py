"""The Explain page in a real headless chromium against the real Streamlit server.

Small real runs are trained by the engine straight into the server's run store (the Train page's own path is
tested in test_browser.py; here the point is what Explain shows of finished runs): first a frozen and a
fine-tuned run, and the page says the from-scratch one is missing and how to make it; then the from-scratch run,
and all three maps stand side by side. A frozen text run then gets a typed sentence coloured word by word.

Run: .venv/bin/python -m pytest -q -m e2e tests/e2e/test_explain_browser.py
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from test_browser import new_page, open_app, pick_radio, nav, script_done, set_number, settle, shot

pytestmark = pytest.mark.e2e

#: Small runs whose maps show something: 128 px gives MobileNetV2's last block a 4x4 grid (64 px: 2x2).
SMALL = dict(backbone="mobilenet_v2", image_size=128, labels_per_class=5, val_per_class=3, test_per_class=3,
             epochs=1, budget="fixed", seed=7)  # a split of its own: the group to pick

_HEATMAPS_JS = """() => { const g = document.querySelector('.st-key-explain_cams:not([data-stale="true"]) .js-plotly-plot');
    if (!g || !g.data) return null;
    return {heatmaps: g.data.filter(t => t.type === 'heatmap').length,
            titles: (g.layout.annotations || []).map(a => a.text)}; }"""


def train_into(app_server, **config) -> str:
    from tl_core.config import TrainConfig
    from tl_core.engine.training import train
    from tl_core.runs.store import RunStore

    store = RunStore(app_server.log_path.parent / "runs.sqlite")  # the server's TL_DATA_DIR (conftest.Server)
    result = train(TrainConfig(**config), store=store, owner="cli")
    assert result.status == "completed", result.error
    return result.run_id


def pick_group(page, text: str) -> None:
    """Choose the runs to compare (other tests of the session may have trained other splits on the same data)."""
    box = page.locator(".st-key-explain_group").get_by_role("combobox")
    expect(box).to_be_visible(timeout=60_000)
    if text in (box.input_value() or ""):
        return
    box.click()
    script_done(page, lambda: page.get_by_role("option").filter(has_text=text).first.click(), timeout=120_000)
    expect(box).to_have_value(re.compile(re.escape(text)))


def cams(page) -> dict:
    page.wait_for_function(f"() => ({_HEATMAPS_JS})() !== null")
    return page.evaluate(f"({_HEATMAPS_JS})()")


def test_explain_maps_side_by_side(new_context, app_server):
    frozen = train_into(app_server, data="builtin:animals", mode="frozen", **SMALL)
    finetune = train_into(app_server, data="builtin:animals", mode="finetune", freeze_depth=5, **SMALL)
    page = new_page(new_context)
    open_app(page, app_server.url, "explain")
    expect(page.locator("h1").filter(has_text="Explain")).to_be_visible()
    expect(page.get_by_text("what its ImageNet features already pick out")).to_be_visible()
    pick_group(page, "seed 7 · 3 validation/class")
    missing = page.get_by_text("Not trained yet on this split, so not shown")
    expect(missing).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="From scratch")).to_contain_text(
        "--mode scratch --seed 7 --val-per-class 3")
    settle(page, timeout=120_000)
    got = cams(page)
    assert got["heatmaps"] == 2, got
    assert "not trained yet" in got["titles"] and any(t.startswith("Validation image 0") for t in got["titles"])
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text(f"Feature extraction (frozen) · {frozen}")
    expect(main).to_contain_text(f"Fine-tune · {finetune}")

    scratch = train_into(app_server, data="builtin:animals", mode="scratch", **SMALL)
    open_app(page, app_server.url, "explain")
    pick_group(page, "seed 7 · 3 validation/class")
    expect(page.locator(".st-key-explain_cams .js-plotly-plot").first).to_be_visible(timeout=120_000)
    settle(page, timeout=120_000)
    got = cams(page)
    assert got["heatmaps"] == 3, got
    titles = " | ".join(got["titles"])
    for label in ("Feature extraction (frozen)<br>", "Fine-tune<br>", "From scratch<br>"):
        assert label in titles, titles
    expect(missing).to_have_count(0)
    expect(main).to_contain_text(f"From scratch · {scratch}")
    expect(page.get_by_text(re.compile(r"sees this image as a 4×4 grid"))).to_be_visible()

    set_number(page, "explain_item", 7)  # another validation image: the maps follow
    settle(page, timeout=120_000)
    page.wait_for_function(f"() => (({_HEATMAPS_JS})() || {{titles: []}}).titles.some(t => t.startsWith('Validation image 7'))")
    assert cams(page)["heatmaps"] == 3
    shot(page, "explain")


def test_explain_a_typed_sentence(new_context, app_server):
    run_id = train_into(app_server, data="builtin:sentiment", backbone="all-MiniLM-L6-v2", mode="frozen",
                        labels_per_class=5, val_per_class=3, test_per_class=3, epochs=1)
    page = new_page(new_context)
    open_app(page, app_server.url, "data")
    pick_radio(page, "data_source", "sentiment —")
    nav(page, "explain", "Explain")
    box = page.locator(".st-key-explain_text input")
    expect(box).to_be_visible(timeout=60_000)
    script_done(page, lambda: (box.fill("the staff were rude and the room was dirty"), box.press("Enter")),
                timeout=120_000)
    tokens = page.locator(".st-key-explain_tokens_frozen .tl-token")
    expect(tokens).to_have_count(9, timeout=60_000)
    assert tokens.all_inner_texts() == ["the", "staff", "were", "rude", "and", "the", "room", "was", "dirty"]
    scores = [float(t.get_attribute("data-score")) for t in tokens.all()]
    assert any(s != 0 for s in scores), scores
    expect(page.get_by_text(re.compile(rf"Run {run_id}: predicts \w+ \(\d+(\.\d)?%\)"))).to_be_visible()
    expect(page.get_by_text("Not trained yet on this split, so not shown")).to_be_visible()
    settle(page, timeout=60_000)
    shot(page, "explain-text")
