"""Nothing is fetched from outside the app: a classroom may have no internet, and a student's browser should not
talk to third parties. Every request a browser makes while it walks every page goes to the app's own server.

Shares the server (conftest.py) and the helpers of test_browser.py.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from test_browser import nav, new_page, open_app, settle

pytestmark = pytest.mark.e2e

#: Every page of the navigation: (URL slug, title).
PAGES = [("data", "Data"), ("model", "Model"), ("train", "Train"), ("compare", "Compare"), ("inspect", "Inspect"),
         ("explain", "Explain"), ("predict", "Predict"), ("lesson", "Lesson"), ("", "Transfer Lab")]
LOCAL_SCHEMES = ("data", "blob", "about")


def foreign_requests(urls: list[str], app_url: str) -> list[str]:
    """The requests that leave the app's own origin (data: and blob: URLs are the page's own bytes)."""
    own = urlparse(app_url).netloc
    return [u for u in urls if urlparse(u).scheme not in LOCAL_SCHEMES and urlparse(u).netloc != own]


def test_foreign_requests_sees_another_host():
    app = "http://127.0.0.1:8501"
    urls = [f"{app}/", "data:image/png;base64,AAA", "blob:http://127.0.0.1:8501/x",
            "https://fonts.gstatic.com/s/materialsymbols.woff2"]
    assert foreign_requests(urls, app) == ["https://fonts.gstatic.com/s/materialsymbols.woff2"]


def test_walking_every_page_fetches_nothing_from_elsewhere(new_context, app_url):
    page = new_page(new_context)
    requested: list[str] = []
    page.context.on("request", lambda request: requested.append(request.url))
    page.context.on("websocket", lambda ws: requested.append(ws.url.replace("ws", "http", 1)))
    open_app(page, app_url)
    settle(page)
    for slug, title in PAGES:
        nav(page, slug, title)
        page.wait_for_timeout(500)  # images, fonts and icons the page asks for after its script ran
    assert len(requested) > len(PAGES), requested  # the recorder saw the walk
    assert not foreign_requests(requested, app_url), foreign_requests(requested, app_url)
