"""Transfer Lab in a real headless chromium against the real Streamlit server, with real training.

One server for the whole file (conftest.py); every test opens its own browser context (a student).
Tests run in file order and pass the trained run along (`shared`); run alone, a test trains what it
needs itself. Each test takes a screenshot of the page it exercised (kept in docs/screenshots/ by `make screenshots`).

Run: .venv/bin/python -m pytest -q -m e2e tests/e2e
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from ui.server_process import STARTUP_TIMEOUT_S

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: Where the screenshots go: docs/screenshots with `make screenshots` (TL_SCREENSHOTS), else a temporary folder,
#: so a test run never rewrites a tracked file.
SHOTS = Path(os.environ.get("TL_SCREENSHOTS") or tempfile.mkdtemp(prefix="tl_screenshots_"))
MAX_SHOT_BYTES = 400_000
MAX_SHOT_HEIGHT = 5000
VIEWPORT = {"width": 1280, "height": 800}  # a classroom projector; NARROW: a small window
NARROW = {"width": 800, "height": 800}
DEMO_EPOCHS = 3  # conftest.SERVER_ENV
DEMO_TIMEOUT_S = 240
RUN_TIMEOUT_MS = 240_000

# Tiny run on the Train page: digits, 10 labels and 5 validation images per class, 32 px, 2 epochs.
TINY = {"data": "digits", "labels": 10, "val": 5, "epochs": 2, "image_size": 32}

_POINTS_JS = """(sel) => { const g = document.querySelector(sel + ':not([data-stale="true"]) .js-plotly-plot');
    if (!g || !g.data) return -1;
    return g.data.filter((t) => t.fill !== 'toself' && !String(t.meta || '').startsWith('key:'))  // bands, legend keys
        .reduce((n, t) => n + ((t.x && t.x.length) || 0), 0); }"""
_RUN_ID = re.compile(r"\bRun ([0-9a-f]{6,}) —")


# ---- helpers ------------------------------------------------------------------------------------------
def shot(page: Page, name: str) -> Path:
    """The whole page as a PNG (Streamlit scrolls an inner container, so the viewport is stretched to the
    content height for the shot), or the viewport only if that would weigh more than MAX_SHOT_BYTES."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    viewport = page.viewport_size or VIEWPORT
    page.mouse.move(viewport["width"] - 5, viewport["height"] - 5)  # no hover tooltip over the content
    height = page.evaluate("""() => Math.max(...[document.scrollingElement,
        ...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], .stMain')]
        .filter(Boolean).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], min(height, MAX_SHOT_HEIGHT))})
    try:
        page.wait_for_timeout(300)  # let the layout settle at the new height
        data = page.screenshot(animations="disabled")
    finally:
        page.set_viewport_size(viewport)
    if len(data) > MAX_SHOT_BYTES:
        data = page.screenshot(animations="disabled")
    path.write_bytes(data)
    return path


def view_shot(page: Page, name: str) -> list[Path]:
    """What a projector (1280x800) and a small window (800x800) show without scrolling: `name.png`, `name-800.png`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    viewport = page.viewport_size or VIEWPORT
    for size, suffix in ((VIEWPORT, ""), (NARROW, "-800")):
        page.set_viewport_size(size)
        page.mouse.move(size["width"] - 5, size["height"] - 5)  # no hover tooltip over the content
        page.wait_for_timeout(1200)  # charts and tables lay themselves out again at the new width
        path = SHOTS / f"{name}{suffix}.png"
        path.write_bytes(page.screenshot(animations="disabled"))
        paths.append(path)
    page.set_viewport_size(viewport)
    return paths


def in_view(page: Page, locator) -> bool:
    """True when the element is entirely inside the window, without scrolling."""
    box = locator.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1 \
        and box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1


class ScriptRuns:
    """Follows the page's Streamlit websocket: the reruns the browser asks for and the script runs that end.

    A rerun that starts and ends between two looks leaves no trace in the DOM (React may batch the
    script-state attribute away), but its `script_finished` message is always sent.
    """

    def __init__(self, page: Page):
        self.requested = 0  # full reruns asked for (widget changes, clicks, page switches; not fragment polls)
        self.finished: list[int] = []  # self.requested at the time each full run finished
        page.on("websocket", self._attach)

    def _attach(self, ws) -> None:
        if "/_stcore/stream" in ws.url:
            ws.on("framesent", self._sent)
            ws.on("framereceived", self._received)

    def _sent(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            msg = BackMsg.FromString(bytes(payload))
            if msg.WhichOneof("type") == "rerun_script" and not msg.rerun_script.fragment_id:
                self.requested += 1

    def _received(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            msg = ForwardMsg.FromString(bytes(payload))
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                self.finished.append(self.requested)


def new_page(new_context) -> Page:
    """A page in a fresh browser context (a new student), its script runs followed."""
    page = new_context().new_page()
    page.tl_runs = ScriptRuns(page)
    return page


def script_done(page: Page, action, timeout: float = 60_000) -> None:
    """Do `action` (something that reruns the script) and wait until a full script run asked for after it ended."""
    runs: ScriptRuns = page.tl_runs
    before = runs.requested
    action()
    deadline = time.monotonic() + timeout / 1000
    while not any(r > before for r in runs.finished):
        if time.monotonic() > deadline:
            text = page.locator('[data-testid="stMain"]').inner_text()[:800]
            raise AssertionError(f"no script run finished within {timeout / 1000:.0f} s after the action "
                                 f"(reruns asked for: {runs.requested - before}); the page shows:\n{text}")
        page.wait_for_timeout(50)  # lets Playwright deliver the websocket events


def open_app(page: Page, base: str, path: str = "", owner: str | None = None) -> str:
    """Load a page by URL (a new Streamlit session; `owner` brings back a session's runs); returns the owner id."""
    script_done(page, lambda: page.goto(f"{base}/{path}" + (f"?s={owner}" if owner else "")), timeout=90_000)
    expect(page).to_have_url(re.compile(r"[?&]s=[0-9a-f]{8,32}"))
    return parse_qs(urlparse(page.url).query)["s"][0]


def nav(page: Page, slug: str, title: str) -> None:
    """Switch page through the navigation at the top (same session, settings kept)."""
    link = page.locator(f'a[data-testid="stTopNavLink"][href$="/{slug}"]')
    script_done(page, link.click, timeout=90_000)
    expect(page.locator("h1").filter(has_text=title).first).to_be_visible()


def set_number(page: Page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    if box.input_value() == str(value):
        return
    script_done(page, lambda: (box.fill(str(value)), box.press("Enter")))
    expect(box).to_have_value(str(value))


def pick_radio(page: Page, key: str, text: str) -> None:
    option = page.locator(f".st-key-{key} label").filter(has_text=text).first
    if option.locator("input").is_checked():
        return
    script_done(page, option.click)
    expect(option.locator("input")).to_be_checked()


def metric_value(page: Page, label: str) -> str:
    m = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return m.locator('[data-testid="stMetricValue"]').inner_text().strip()


def settle(page: Page, timeout: float = 30_000) -> None:
    """Wait until no script runs and no stale element is left on screen (only for pages that stopped polling)."""
    page.wait_for_function("""() => document.querySelector('.stApp').getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-stale="true"]')""", timeout=timeout)


def chart(page: Page, key: str):
    """The plotly chart of element key `key` (a finished fragment and the full rerun after it may show
    the same element twice for a moment: the stale copy is ignored)."""
    return page.locator(f'.st-key-{key}:not([data-stale="true"]) .js-plotly-plot').first


def chart_points(page: Page, key: str) -> int:
    """Points drawn by the plotly chart of element key `key` (-1: no chart yet)."""
    return page.evaluate(_POINTS_JS, f".st-key-{key}")


def configure(page: Page, *, data: str, labels: int, val: int, epochs: int, image_size: int,
              mode: str | None = None) -> None:
    """Pick data and settings the way a student does: Data page, then Model page."""
    nav(page, "data", "Data")
    pick_radio(page, "data_source", f"{data} —")
    set_number(page, "labels_per_class", labels)
    set_number(page, "val_per_class", val)
    expect(page.get_by_text(re.compile(rf"Split: [\d,]+ training, {10 * val} validation, [\d,]+ test items"))).to_be_visible()
    nav(page, "model", "Model")
    if mode:
        pick_radio(page, "mode", mode)
    set_number(page, "epochs", epochs)
    set_number(page, "image_size", image_size)
    if mode in ("Fine-tune", "From scratch"):  # a few steps: these tests check the pages, not the protocol
        pick_select(page, "budget", "same short budget")


def start_training(page: Page) -> None:
    button = page.locator(".st-key-start_run").get_by_role("button", name="Start training")
    expect(button).to_be_enabled()
    button.click()


def wait_completed(page: Page, epochs: int) -> str:
    """Wait for the shown run to complete; check the final metrics and curves; return its run id."""
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")).to_be_visible(
        timeout=RUN_TIMEOUT_MS)
    expect(page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=re.compile(r"took [\d.]+ s on")))\
        .to_be_visible()
    assert re.fullmatch(r"\d+(\.\d)?%", metric_value(page, "Test accuracy")), metric_value(page, "Test accuracy")
    expect(chart(page, "train_curves")).to_be_visible()
    expect(chart(page, "train_cm")).to_be_visible()
    settle(page)
    # train and validation loss and accuracy, one point per epoch
    lengths = page.evaluate("""() => document.querySelector('.st-key-train_curves:not([data-stale="true"]) .js-plotly-plot')
        .data.map(t => (t.x && t.x.length) || 0)""")
    if not (len([n for n in lengths if n == epochs]) >= 4 and max(lengths) == epochs):
        pytest.fail(f"curve points per trace {lengths}, expected {epochs}; {page.url} shows:\n"
                    + page.locator('[data-testid="stMain"]').inner_text()[:3000])
    return shown_run_id(page)


def shown_run_id(page: Page) -> str:
    text = page.locator('[data-testid="stMain"]').inner_text()
    ids = _RUN_ID.findall(text)
    assert ids, f"no 'Run <id> —' line on the Train page:\n{text[:2000]}"
    return ids[0]


def tiny_run(new_context, base: str, shared: dict) -> dict:
    """The Train page's tiny run, once per session of tests: {"owner", "run_id"}."""
    if "tiny" not in shared:
        page = new_page(new_context)
        owner = open_app(page, base)
        configure(page, **TINY)
        nav(page, "train", "Train")
        start_training(page)
        shared["tiny"] = {"owner": owner, "run_id": wait_completed(page, TINY["epochs"])}
    return shared["tiny"]


def png_bytes(color, size=(32, 32), digit: str | None = None) -> bytes:
    img = Image.new("RGB", size, tuple(int(c) for c in color))
    if digit is not None:
        ImageDraw.Draw(img).text((size[0] // 3, size[1] // 4), digit, fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def class_zip(classes: dict[str, tuple[int, int, int]], per_class: int = 12) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, base in classes.items():
            for i in range(per_class):
                color = np.clip(np.array(base) + rng.integers(-30, 30, 3), 0, 255)
                zf.writestr(f"shapes/{name}/{i}.png", png_bytes(color))
    return buf.getvalue()


def upload(page: Page, key: str, name: str, payload: bytes, mime: str = "application/zip") -> None:
    box = page.locator(f'.st-key-{key} input[type="file"]')
    script_done(page, lambda: box.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": payload}]),
                timeout=90_000)


# ---- 1. Home: the classroom demo ------------------------------------------------------------------------------
def test_home_classroom_demo(new_context, app_url, capsys):
    page = new_page(new_context)
    open_app(page, app_url)
    expect(page.locator("h1").filter(has_text="Transfer Lab")).to_be_visible()
    button = page.locator(".st-key-run_demo").get_by_role("button", name="Run the classroom demo")
    expect(button).to_be_visible()  # the page answers at once; the button turns on when the server is warm
    expect(button).to_be_enabled(timeout=STARTUP_TIMEOUT_S * 1000)
    expect(page.get_by_text("Getting ready")).to_have_count(0)

    click = time.perf_counter()
    button.click()
    first_point = None
    seen_counts: list[int] = []
    progress_seen = False
    sentence = page.get_by_text("over training from scratch")
    while time.perf_counter() - click < DEMO_TIMEOUT_S:
        n = chart_points(page, "demo_overlay")
        if n > 0 and first_point is None:
            first_point = time.perf_counter() - click
        if n > 0 and (not seen_counts or seen_counts[-1] != n):
            seen_counts.append(n)
        progress_seen = progress_seen or page.locator('[data-testid="stProgress"]').count() > 0
        if sentence.count():
            break
        time.sleep(0.1)
    finished = time.perf_counter() - click
    with capsys.disabled():
        print(f"\n[e2e] classroom demo ({DEMO_EPOCHS} epochs): first chart point "
              f"{'never' if first_point is None else f'{first_point:.1f} s'} after the click, "
              f"finished after {finished:.1f} s; points seen {seen_counts}")

    expect(sentence.first).to_be_visible(timeout=1)  # fails here if the demo did not finish in time
    assert progress_seen, "no progress bar while the three runs trained"
    assert first_point is not None, "the overlay chart never got a point"
    assert len(seen_counts) >= 2 and seen_counts == sorted(seen_counts), f"chart did not grow: {seen_counts}"
    page.wait_for_function(f"() => ({_POINTS_JS})('.st-key-demo_overlay') === {3 * DEMO_EPOCHS}")
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    expect(chart(page, "demo_gap")).to_be_visible()
    for label in ("Feature extraction (frozen)", "Fine-tune", "From scratch"):
        expect(page.get_by_text(re.compile(rf"{re.escape(label)}: test accuracy \d+%"))).to_be_visible()
    expect(sentence.first).to_contain_text("3 seeds")
    expect(chart(page, "demo_gap")).to_contain_text("same short budget")  # the tests' demo (TL_DEMO_BUDGET) says so
    settle(page)
    # On a projector (1280x800) the whole result is on screen without scrolling: the three status lines, the
    # curves, the transfer-gap chart and the sentence.
    assert page.viewport_size == VIEWPORT
    for what, element in [
        *[(label, page.get_by_text(re.compile(rf"{re.escape(label)}: test accuracy")).first)
          for label in ("Feature extraction (frozen)", "Fine-tune", "From scratch")],
        ("curves", chart(page, "demo_overlay")), ("gap chart", chart(page, "demo_gap")), ("sentence", sentence.first)]:
        assert in_view(page, element), f"the demo's {what} is not in view at 1280x800: {element.bounding_box()}"
    view_shot(page, "home-demo")


# ---- 2. Data: upload, report, bad uploads keep the dataset ----------------------------------------------------
def test_data_upload_and_bad_upload(new_context, app_url):
    page = new_page(new_context)
    open_app(page, app_url, "data")
    expect(page.locator("h1").filter(has_text="Data")).to_be_visible()
    pick_radio(page, "data_source", "Upload your own")

    good = class_zip({"red": (200, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 200)})
    upload(page, "upload", "shapes.zip", good)
    report = page.locator("h2").filter(has_text="Report: your upload shapes.zip")
    expect(report).to_be_visible()
    expect(page.get_by_text(re.compile(r"3 classes:.*blue \(12\).*green \(12\).*red \(12\)"))).to_be_visible()
    assert metric_value(page, "Classes") == "3"
    assert metric_value(page, "Items") == "36"
    # The split settings were hidden while no upload was loaded; they come back with the values in use.
    expect(page.locator(".st-key-val_per_class input")).to_have_value("20")
    expect(page.get_by_text("Split: 12 training, 12 validation, 12 test items.")).to_be_visible()  # a third each

    errors = page.locator('[data-testid="stAlertContentError"]')
    for name, payload in [("broken.zip", b"this is not a zip archive at all"),
                          ("one-class.zip", class_zip({"red": (200, 30, 30)}, per_class=6))]:
        upload(page, "upload", name, payload)
        expect(errors.filter(has_text=name)).to_be_visible()
        expect(page.get_by_text("Still using the previously loaded dataset: shapes.zip")).to_be_visible()
        expect(report).to_be_visible()
        assert metric_value(page, "Classes") == "3"
    shot(page, "data")


# ---- 2b. A refresh and the session URL in a second tab keep the upload and the settings; Start trains them ----
def train_summary(page: Page) -> str:
    box = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Hyperparameters:").first
    expect(box).to_be_visible()
    return box.inner_text()


def test_refresh_and_second_tab_keep_upload_and_settings(new_context, app_url):
    page = new_page(new_context)
    owner = open_app(page, app_url, "data")
    pick_radio(page, "data_source", "Upload your own")
    upload(page, "upload", "shapes.zip",
           class_zip({"red": (200, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 200)}))
    expect(page.locator("h2").filter(has_text="Report: your upload shapes.zip")).to_be_visible()
    set_number(page, "labels_per_class", 4)
    set_number(page, "val_per_class", 3)
    nav(page, "model", "Model")
    pick_radio(page, "mode", "Fine-tune")
    set_number(page, "epochs", 3)
    set_number(page, "image_size", 40)
    nav(page, "train", "Train")
    settings = train_summary(page)
    for part in ("your upload shapes.zip", "4 labels/class", "3 validation/class", "Fine-tune (k=", "300 epochs",
                 "image size 40 px"):
        assert part in settings, settings

    script_done(page, page.reload, timeout=90_000)  # F5
    assert train_summary(page) == settings
    nav(page, "data", "Data")
    expect(page.get_by_text("Using shapes.zip")).to_be_visible()  # the uploader is empty; the kept file is named
    expect(page.locator("h2").filter(has_text="Report: your upload shapes.zip")).to_be_visible()
    expect(page.locator(".st-key-labels_per_class input")).to_have_value("4")

    other = new_page(new_context)  # another tab, or another computer, with the session URL
    assert open_app(other, app_url, "data", owner=owner) == owner
    expect(other.get_by_text("Using shapes.zip")).to_be_visible()
    expect(other.locator("h2").filter(has_text="Report: your upload shapes.zip")).to_be_visible()
    nav(other, "train", "Train")
    assert train_summary(other) == settings
    start_training(other)  # and Start trains exactly that
    run_id = wait_completed(other, 30)  # the plan's 300 epochs, evaluated every tenth: 30 points on the curve
    header = other.get_by_text(re.compile(rf"Run {run_id} —")).first.inner_text()
    assert "your upload shapes.zip" in header and "upload:" not in header, header
    assert "Fine-tune (k=" in header and "4 labels/class · 300 epochs" in header, header


# ---- 3. Model: the freeze-depth slider moves the trainable-parameter count -------------------------------------
def test_model_freeze_slider(new_context, app_url):
    page = new_page(new_context)
    open_app(page, app_url, "model")
    expect(page.locator("h1").filter(has_text="Model")).to_be_visible()
    slider = page.locator('.st-key-freeze_depth input[type="range"]')
    expect(slider).to_have_count(1)
    before = metric_value(page, "Trainable parameters")
    start = int(slider.get_attribute("aria-valuetext") or slider.input_value())
    max_depth = int(slider.get_attribute("max"))

    counts = [before]
    for key, expected_depth in [("ArrowRight", min(start + 1, max_depth)), ("Home", 0)]:
        slider.focus()
        script_done(page, lambda key=key: slider.press(key))
        expect(slider).to_have_value(str(expected_depth))
        expect(page.locator('[data-testid="stMetric"]').filter(has_text="Trainable parameters")
               .locator('[data-testid="stMetricValue"]')).not_to_have_text(counts[-1])
        counts.append(metric_value(page, "Trainable parameters"))
    as_int = [int(c.replace(",", "")) for c in counts]
    assert as_int[0] < as_int[1] < as_int[2], counts  # frozen head only < fine-tune k+1 < fine-tune everything
    # moving the slider switched the mode to fine-tune
    expect(page.locator(".st-key-mode label").filter(has_text="Fine-tune").locator("input")).to_be_checked()
    shot(page, "model")


# ---- 3b. Model: a recipe preset, drawn, trained from the Train page, kept across a refresh ----------------------
def pick_select(page: Page, key: str, text: str) -> None:
    """Choose the option of selectbox `key` that contains `text` (Streamlit 1.67: a react-aria combobox)."""
    box = page.locator(f".st-key-{key} input[role='combobox']")
    if text in box.input_value():
        return
    box.click()  # opens the list, unless the click's blur of another widget reran the page and closed it
    listbox = page.get_by_role("listbox")
    try:
        expect(listbox).to_be_visible(timeout=2000)
    except AssertionError:
        box.press("ArrowDown")
    option = listbox.get_by_role("option").filter(has_text=text).first
    script_done(page, option.click)
    expect(box).to_have_value(re.compile(re.escape(text)))


def test_model_recipe_presets(new_context, app_url):
    page = new_page(new_context)
    owner = open_app(page, app_url)
    configure(page, **TINY)
    pick_select(page, "recipe", "Gradual unfreezing")
    expect(page.get_by_text("Universal Language Model Fine-tuning").first).to_be_visible()
    expect(chart(page, "block_diagram")).to_contain_text("Gradual unfreezing (ULMFiT)")
    expect(chart(page, "block_diagram")).to_contain_text("from epoch 2")
    expect(page.locator(".st-key-mode label").filter(has_text="Fine-tune").locator("input")).to_be_checked()
    settle(page)
    shot(page, "recipes")

    pick_select(page, "recipe", "BatchNorm adaptation (AdaBN)")  # the Train page runs the preset
    expect(chart(page, "block_diagram")).to_contain_text("AdaBN: all 9 blocks frozen")
    nav(page, "train", "Train")
    expect(page.get_by_text("recipe: BatchNorm adaptation (AdaBN)").first).to_be_visible()
    start_training(page)
    run_id = wait_completed(page, TINY["epochs"])
    header = page.get_by_text(re.compile(rf"Run {run_id} —")).first.inner_text()
    assert "BatchNorm adaptation (AdaBN)" in header, header

    open_app(page, app_url, "model", owner=owner)  # a refresh keeps the preset
    expect(page.locator(".st-key-recipe input[role='combobox']")).to_have_value(
        re.compile(re.escape("BatchNorm adaptation (AdaBN)")))
    expect(chart(page, "block_diagram")).to_contain_text("AdaBN: all 9 blocks frozen")


# ---- 4. Train: a tiny run to the end, then a longer one cancelled ----------------------------------------------
def test_train_run_and_cancel(new_context, app_url, shared):
    page = new_page(new_context)
    owner = open_app(page, app_url)
    configure(page, **TINY, mode="Fine-tune")
    nav(page, "train", "Train")
    summary = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Hyperparameters:").first
    expect(summary).to_contain_text("2 epochs")
    expect(summary).to_contain_text("image size 32 px")
    expect(summary).to_contain_text("10 labels/class")
    expect(page.get_by_text("Trainable parameters:")).to_be_visible()

    start_training(page)
    expect(page.locator('[data-testid="stProgress"]').first).to_be_visible()
    run_id = wait_completed(page, TINY["epochs"])
    expect(page.get_by_text(f"Run {run_id}").first).to_be_visible()
    expect(chart(page, "train_change")).to_be_visible()  # a fine-tune: which blocks it changed
    expect(chart(page, "train_change")).to_contain_text("What fine-tuning changed")
    shared["tiny"] = {"owner": owner, "run_id": run_id}
    view_shot(page, "train")

    # a longer run, from scratch (no activation cache: every epoch runs the whole network), cancelled mid-run
    configure(page, **{**TINY, "epochs": 40}, mode="From scratch")
    nav(page, "train", "Train")
    start_training(page)
    progress = page.locator('[data-testid="stProgress"]').first
    # forty epochs from scratch (the short budget configure picks): long enough to cancel mid-run
    expect(progress).to_contain_text(re.compile(r"epoch \d+/\d+"), timeout=RUN_TIMEOUT_MS)
    # While it trains the page is compact: the settings fold into one line, so the live curves start on a
    # projector's screen (1280x800) without scrolling.
    expect(page.locator('[data-testid="stExpander"]').filter(has_text="What will run:")).to_be_visible()
    curves = chart(page, "train_curves")
    expect(curves).to_be_visible()
    box = curves.bounding_box()
    assert box is not None and box["y"] < VIEWPORT["height"] - 100, f"the live curves start at {box} at 1280x800"
    cancel = page.locator(".st-key-cancel_run").get_by_role("button", name="Cancel")
    cancel.click()
    expect(page.get_by_text(re.compile(r"cancelled after \d+ of \d+ epochs"))).to_be_visible(timeout=60_000)
    expect(cancel).to_have_count(0)
    assert "Best val accuracy" not in page.locator('[data-testid="stMain"]').inner_text()


# ---- 5. Two students at once ----------------------------------------------------------------------------------
def test_two_students_train_at_once(new_context, app_url):
    students = [new_page(new_context), new_page(new_context)]
    owners = [open_app(p, app_url) for p in students]
    assert owners[0] != owners[1]
    for p in students:
        configure(p, **TINY)
        nav(p, "train", "Train")
    for p in students:  # both clicks within a second: both runs share the server's two training slots
        start_training(p)
    for p in students:
        expect(p.locator('[data-testid="stProgress"]').first).to_be_visible()
    ids = [wait_completed(p, TINY["epochs"]) for p in students]
    assert ids[0] != ids[1]
    for p, mine, other in [(students[0], ids[0], ids[1]), (students[1], ids[1], ids[0])]:
        text = p.locator('[data-testid="stMain"]').inner_text()
        assert _RUN_ID.findall(text) == [mine], text[:1500]
        assert other not in text
        expect(p.locator(".st-key-train_view")).to_have_count(0)  # one run of one's own: no run picker


# ---- 6. Predict: a finished run on an uploaded image -------------------------------------------------------------
def test_predict_topk(new_context, app_url, shared):
    run = tiny_run(new_context, app_url, shared)
    page = new_page(new_context)
    open_app(page, app_url, "predict", owner=run["owner"])
    expect(page.locator("h1").filter(has_text="Predict")).to_be_visible()
    picker = page.locator(".st-key-predict_run")
    # yours first: the tiny run is preselected
    expect(picker.get_by_role("combobox")).to_have_value(re.compile(rf"{run['run_id']}.*yours"))

    upload(page, "predict_files", "seven.png", png_bytes((0, 0, 0), digit="7"), mime="image/png")
    expect(chart(page, "topk_0")).to_be_visible(timeout=60_000)
    bars = page.evaluate("""() => { const t = document.querySelector('.st-key-topk_0:not([data-stale="true"]) .js-plotly-plot').data[0];
        return {y: Array.from(t.y), x: Array.from(t.x)}; }""")
    assert len(bars["y"]) == 5 and set(bars["y"]) <= {str(d) for d in range(10)}, bars
    assert all(0 <= p <= 1 for p in bars["x"]) and sum(bars["x"]) <= 1.0001, bars
    assert sorted(bars["x"], reverse=True) in (bars["x"], bars["x"][::-1]), bars  # ordered by probability
    expect(page.get_by_text(re.compile(r"^\d \(\d+(\.\d)?%\)$")).first).to_be_visible()
    view_shot(page, "predict")


# ---- 7. Compare: the runs table and the charts ---------------------------------------------------------------------
def runs_csv(page: Page) -> list[dict]:
    """The runs table as the page's "Download table (CSV)" button gives it (the grid itself is a canvas)."""
    with page.expect_download() as download:
        page.locator(".st-key-download_csv").get_by_role("button", name="Download table (CSV)").click()
    return list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))


def test_compare_table_and_charts(new_context, app_url, shared):
    run = tiny_run(new_context, app_url, shared)
    page = new_page(new_context)
    open_app(page, app_url, "compare", owner=run["owner"])
    expect(page.locator("h1").filter(has_text="Compare")).to_be_visible()
    table = page.locator('[data-testid="stDataFrame"]').first
    expect(table).to_be_visible()
    mine = runs_csv(page)
    assert run["run_id"] in {r["run"] for r in mine}, mine
    assert all(r["mine"] == "True" for r in mine), mine
    assert "owner" not in mine[0], "owner ids are session keys and must not be shown"
    expect(chart(page, "compare_overlay")).to_be_visible()
    page.wait_for_function(f"() => ({_POINTS_JS})('.st-key-compare_overlay') > 0")
    expect(chart(page, "compare_gap")).to_be_visible()

    whole_class = page.locator(".st-key-compare_scope").get_by_role("radio", name="Whole class")
    script_done(page, whole_class.click)
    expect(whole_class).to_have_attribute("aria-checked", "true")
    expect(table).to_be_visible()
    everyone = runs_csv(page)
    assert {r["run"] for r in mine} < {r["run"] for r in everyone} or len(everyone) == len(mine), everyone
    expect(chart(page, "compare_gap")).to_be_visible()
    expect(page.get_by_text("over training from scratch").first).to_be_visible()
    view_shot(page, "compare")
