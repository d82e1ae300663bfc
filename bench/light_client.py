"""Light clients: students whose Streamlit sessions are held over the server's own websocket protocol, no browser.

A light client is what a browser tab is to the server, and nothing more. It connects to
`ws://HOST:PORT/_stcore/stream` (subprotocol "streamlit"), sends the BackMsg a page load sends (`rerun_script`
with the page's name and its query string `s=<session id>`, so the app files it under that session:
ui/session_id.py), reads every ForwardMsg the server sends (streamlit.proto.ForwardMsg_pb2), and answers them
as Streamlit's frontend does:

* a fragment's `auto_rerun` starts a timer that sends `rerun_script` with the fragment's id and
  `is_auto_rerun` every `interval` seconds, `stop_auto_rerun` and a full run's `new_session` stop them (the
  frontend's handleAutoRerun / cleanupAutoReruns), so a light page polls its live run exactly as a tab does;
* later reruns name the page by the `page_script_hash` the server's `navigation` message gave, and carry the
  query string the server last set (`page_info_changed`);
* `click(key)` sends a rerun whose widget states hold the button's `trigger_value` true (the button's id is read
  from its Button element: `$$ID-<hash>-<key>`), once; the server resets a trigger after the run.

From the deltas it follows what the page shows, in the shape of the bench's browser observer (`window.__tl`):
the run or job ids in bold ("**Run 1a2b**"), when the learning-curve chart (key `train_curves`) first held a
point, when the "Test accuracy" metric appeared (the finished result), an error alert, "queued (position".
A time is when the client received the message, on the server's own machine: the moment the server sent it,
give or take the loopback.

What a light client does not exercise: no rendering (no React, no DOM, no layout), no JavaScript, no plotly
(a chart is a JSON spec it counts points in, never draws), no browser CPU or memory, no static files (the
frontend's JS bundle, fonts, the favicon, media), no health or host-config requests, and no ForwardMsg cache
(it reports no cached message hashes, so the server sends every message in full where a tab would get a
reference). It holds the widget states it sets and no others: a widget it never touches keeps its value on
the server, as Streamlit keeps any widget the client does not mention. It answers the server's websocket pings at
once, where a starved tab may not (one that reads nothing for the server's ping timeout, 30 s, has its socket
closed, and Streamlit's frontend reconnects). It is the server's side of a student, at the cost of a coroutine.

Usage (as a library: bench/bench_classroom.py; alone, one session on a running server):
  python bench/light_client.py http://127.0.0.1:8501 [--page train] [--click start_run] [--seconds 60]
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import threading
import time
import uuid

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

RUN_RE = re.compile(r"\*\*(Run|Job) ([0-9A-Za-z]+)\*\*")
ERROR_ALERT = 1  # streamlit.proto.Alert_pb2.Alert.Format.ERROR
CHART_KEY = "train_curves"
RESULT_LABEL = "Test accuracy"


def now_ms() -> int:
    """Wall-clock milliseconds, as the browser's Date.now(): light and browser times share one clock."""
    return int(time.time() * 1000)


def chart_points(spec: str) -> int:
    """Points on a plotly figure's curves (its JSON spec), bands (fill 'toself') left out, as the browser observer
    counts them."""
    try:
        data = json.loads(spec).get("data") or []
    except (ValueError, AttributeError):
        return 0
    return sum(len(t.get("x") or ()) for t in data if isinstance(t, dict) and t.get("fill") != "toself")


class LightSession:
    """One student's session over the websocket. `watch` mirrors the bench's browser observer; `run()` holds the
    connection until `close()`."""

    def __init__(self, url: str, owner: str | None = None, page: str = "train"):
        self.ws_url = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/_stcore/stream"
        self.owner = owner or uuid.uuid4().hex[:16]
        self.page = page
        self.query = f"s={self.owner}"
        self.page_hash = ""
        self.buttons: dict[str, str] = {}  # widget key -> the button's widget id
        self.button_disabled: dict[str, bool] = {}
        self.watch: dict = {"clickAt": None, "firstPointAt": None, "doneAt": None, "failedAt": None,
                            "queued": False, "seen": {}, "ticks": 0, "error": None}
        self.stats = {"messages": 0, "bytes": 0, "reruns_sent": 0, "auto_reruns_sent": 0, "full_runs": 0,
                      "fragment_runs": 0, "connected_at": None, "closed": None}
        self.last_message_at: int | None = None
        self.trace: collections.deque = collections.deque(maxlen=40)  # the last messages, in short (a stuck page's)
        self.texts: list[str] = []  # the latest full run's markdown, progress texts and alerts (a stuck page's view)
        self._ws = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._loaded = asyncio.Event()
        self._closing = False

    # ---- sending ----------------------------------------------------------------------------------------------
    async def _rerun(self, *, widgets: list[WidgetState] = (), fragment_id: str = "", auto: bool = False) -> None:
        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string = self.query
        if self.page_hash:
            rs.page_script_hash = self.page_hash
        else:  # the first load: the page by its URL path, as the frontend names it before it knows the hash
            rs.page_name = self.page
        rs.widget_states.widgets.extend(widgets)
        if fragment_id:
            rs.fragment_id = fragment_id
            rs.is_auto_rerun = auto
        rs.context_info.timezone = "UTC"
        rs.context_info.url = self.ws_url.replace("ws", "http", 1).replace("/_stcore/stream", f"/{self.page}")
        await self._ws.send(msg.SerializeToString())
        self.stats["auto_reruns_sent" if auto else "reruns_sent"] += 1

    async def click(self, key: str = "start_run", at_ms: int | None = None) -> None:
        """Press the button with widget key `key` (at wall-clock `at_ms`, when given): one rerun with its trigger."""
        if at_ms is not None:
            await asyncio.sleep(max(0.0, at_ms / 1000 - time.time()))
        widget_id = self.buttons.get(key)
        if widget_id is None:
            raise RuntimeError(f"no button with key {key!r} on {self.page} (session {self.owner})")
        self.watch["clickAt"] = now_ms()
        await self._rerun(widgets=[WidgetState(id=widget_id, trigger_value=True)])

    def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        old = self._timers.get(fragment_id)
        if old and old[0] == interval:
            return
        self._stop_timer(fragment_id)

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                await self._rerun(fragment_id=fragment_id, auto=True)

        self._timers[fragment_id] = (interval, asyncio.ensure_future(tick()))

    def _stop_timer(self, fragment_id: str) -> None:
        old = self._timers.pop(fragment_id, None)
        if old:
            old[1].cancel()

    # ---- reading ----------------------------------------------------------------------------------------------
    def _element(self, el, at: int) -> None:
        kind = el.WhichOneof("type")
        w = self.watch
        if kind == "button":
            key = el.button.id.rsplit("-", 1)[-1]
            self.buttons[key] = el.button.id
            self.button_disabled[key] = el.button.disabled
        elif kind == "markdown":
            body = el.markdown.body
            self.texts.append(body)
            if w["clickAt"] is not None:
                for m in RUN_RE.finditer(body):
                    k = f"{m.group(1)} {m.group(2)}"
                    w["seen"][k] = w["seen"].get(k, 0) + 1
        elif kind == "progress":
            self.texts.append(el.progress.text)
            if w["clickAt"] is not None and "queued (position" in el.progress.text:
                w["queued"] = True
        elif kind == "plotly_chart":
            if (w["clickAt"] is not None and w["firstPointAt"] is None and el.plotly_chart.id.endswith(CHART_KEY)
                    and chart_points(el.plotly_chart.spec) > 0):
                w["firstPointAt"] = at
        elif kind == "metric":
            if w["clickAt"] is not None and w["doneAt"] is None and el.metric.label == RESULT_LABEL:
                w["doneAt"] = at
        elif kind == "alert":
            self.texts.append(el.alert.body)
            if (w["clickAt"] is not None and el.alert.format == ERROR_ALERT and w["failedAt"] is None
                    and w["doneAt"] is None):
                w["failedAt"], w["error"] = at, el.alert.body[:300]
        elif kind == "exception":
            self.texts.append(f"{el.exception.type}: {el.exception.message}")
            if w["clickAt"] is not None and w["failedAt"] is None:
                w["failedAt"], w["error"] = at, f"{el.exception.type}: {el.exception.message}"[:300]

    def _handle(self, fm: ForwardMsg, at: int) -> None:
        kind = fm.WhichOneof("type")
        self.trace.append(_short(fm, kind))
        if kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
            self._element(fm.delta.new_element, at)
        elif kind == "new_session":
            if fm.metadata.run.fragment_ids:
                self.stats["fragment_runs"] += 1
            else:  # a full run: the frontend drops every fragment's timer, the run sets them again
                self.stats["full_runs"] += 1
                for fid in list(self._timers):
                    self._stop_timer(fid)
                self.texts = []
            if self.watch["clickAt"] is not None:
                self.watch["ticks"] += 1
        elif kind == "navigation" and fm.navigation.page_script_hash:
            self.page_hash = fm.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = fm.page_info_changed.query_string
        elif kind == "auto_rerun" and fm.auto_rerun.fragment_id:
            self._auto_rerun(fm.auto_rerun.fragment_id, fm.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in fm.stop_auto_rerun.fragment_ids:
                self._stop_timer(fid)
        elif kind == "script_finished" and fm.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
            self._loaded.set()

    async def run(self) -> None:
        """Connect, load the page, then read until `close()` (or the server closes the socket)."""
        try:
            async with websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None, proxy=None,
                                          open_timeout=120, ping_interval=None) as ws:
                self._ws = ws
                self.stats["connected_at"] = now_ms()
                await self._rerun()
                while not self._closing:
                    data = await ws.recv()
                    at = now_ms()
                    self.stats["messages"] += 1
                    self.stats["bytes"] += len(data)
                    self.last_message_at = at
                    fm = ForwardMsg()
                    fm.ParseFromString(data)
                    self._handle(fm, at)
        except websockets.ConnectionClosed as err:
            self.stats["closed"] = f"closed by the server: {err}" if not self._closing else "closed"
        finally:
            for fid in list(self._timers):
                self._stop_timer(fid)
            self._loaded.set()

    async def loaded(self, key: str = "start_run", timeout: float = 180.0) -> None:
        """Wait until the page has loaded with the button `key` enabled (its fragments may enable it later)."""
        deadline = time.monotonic() + timeout
        await asyncio.wait_for(self._loaded.wait(), timeout)
        while self.button_disabled.get(key, True):
            if self.stats["closed"] or time.monotonic() > deadline:
                raise TimeoutError(f"{key!r} never enabled on {self.page} (session {self.owner}): "
                                   f"{self.stats['closed'] or 'timeout'}")
            await asyncio.sleep(0.2)

    @property
    def polling(self) -> list[str]:
        """The fragments this session's timers rerun (a tab's poll timers)."""
        return sorted(self._timers)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()

    def view(self) -> dict:
        """What a page that never showed its result showed instead (the stuck-page record)."""
        text = "\n".join(self.texts)
        at = text.find("**Run ")
        at = text.find("**Job ") if at < 0 else at
        return {"run_part": (text[at:at + 400] if at >= 0 else text[-300:]), "errors": [self.watch["error"]]
                if self.watch["error"] else [], "status": self.stats["closed"] or "connected",
                "last_message_s_ago": None if self.last_message_at is None
                else round((now_ms() - self.last_message_at) / 1000, 1),
                "messages": self.stats["messages"], "auto_reruns_sent": self.stats["auto_reruns_sent"],
                "polling": self.polling, "last_messages": list(self.trace)}


def _short(fm: ForwardMsg, kind: str) -> str:
    """One message in a few words: its kind, and what matters of it (a run's fragments, an element's kind)."""
    if kind == "delta":
        d = fm.delta
        what = d.new_element.WhichOneof("type") if d.WhichOneof("type") == "new_element" else d.WhichOneof("type")
        return f"delta {what}" + (f" in {d.fragment_id[:6]}" if d.fragment_id else "")
    if kind == "new_session":
        return "new_session " + (f"fragment {fm.metadata.run.fragment_ids[0][:6]}" if fm.metadata.run.fragment_ids
                                 else "full run")
    if kind == "auto_rerun":
        return f"auto_rerun {fm.auto_rerun.fragment_id[:6]} every {fm.auto_rerun.interval:g} s"
    if kind == "script_finished":
        return f"script_finished {ForwardMsg.ScriptFinishedStatus.Name(fm.script_finished)}"
    return kind


class LightClass:
    """N light sessions on one event loop in a thread of their own, driven from synchronous code (the bench's
    Playwright loop): `open(owners)`, `click_all(at_ms)`, `watches()`, `close()`."""

    def __init__(self, url: str, page: str = "train"):
        self.url, self.page = url, page
        self.sessions: list[LightSession] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="light-clients", daemon=True)
        self._thread.start()
        self._tasks: list = []

    def _call(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def open(self, owners: list[str], key: str = "start_run", timeout: float = 300.0) -> None:
        """One session per owner, each loaded with `key` enabled; sessions open one after another, as a class's
        students arrive."""
        async def open_all() -> None:
            for owner in owners:
                s = LightSession(self.url, owner, self.page)
                self.sessions.append(s)
                self._tasks.append(asyncio.ensure_future(s.run()))
                await s.loaded(key, timeout)

        self._call(open_all(), timeout + 60 * len(owners))

    def click_all(self, at_ms: int, key: str = "start_run") -> None:
        """Schedule every session's click at wall-clock `at_ms`; returns at once."""
        for s in self.sessions:
            asyncio.run_coroutine_threadsafe(s.click(key, at_ms), self._loop)

    def watches(self) -> list[dict]:
        async def read() -> list[dict]:
            return [json.loads(json.dumps(s.watch)) for s in self.sessions]

        return self._call(read(), 30)

    def close(self) -> None:
        async def close_all() -> None:
            for s in self.sessions:
                await s.close()
            await asyncio.wait(self._tasks, timeout=10) if self._tasks else None

        try:
            self._call(close_all(), 30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="One light session on a running Transfer Lab server.")
    ap.add_argument("url", help="the server, e.g. http://127.0.0.1:8501")
    ap.add_argument("--page", default="train")
    ap.add_argument("--session", default=None, help="session id (?s=); a new one by default")
    ap.add_argument("--click", default="", help="a button's widget key to press once loaded, e.g. start_run")
    ap.add_argument("--seconds", type=float, default=60, help="how long to follow the page")
    args = ap.parse_args(argv)

    async def go() -> dict:
        s = LightSession(args.url, args.session, args.page)
        task = asyncio.ensure_future(s.run())
        await s.loaded(args.click or "start_run")
        if args.click:
            await s.click(args.click)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and not (s.watch["doneAt"] or s.watch["failedAt"]):
            await asyncio.sleep(0.2)
        await s.close()
        await asyncio.wait([task], timeout=10)
        return {"owner": s.owner, "watch": s.watch, "stats": s.stats}

    print(json.dumps(asyncio.run(go())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
