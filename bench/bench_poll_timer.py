"""Pages that stop polling: Streamlit's lost poll timer, with and without ui.views.keep_polling.

A live page polls from a fragment (ui/views.py: live): the browser reruns the fragment on a timer that the full run
drawing the fragment announces (an `auto_rerun` message), and drops every timer when a full run starts. When a
poll reaches the server after a full run's script thread has ended but before the server's event loop has sent that
run's last messages, Streamlit 1.67 starts a new ScriptRunner for the poll and drops the old one's remaining
messages (the `auto_rerun` among them) as "from a non-current ScriptRunner": the page never polls again.
`views.keep_polling` repeats the timer on every poll, so the next poll puts it back.

This starts a small app (written to a temporary folder) whose page does what the Train page does under load: a
full run with some work in it, and a fragment, polling every 0.3 s through `views.live`, that asks for a full rerun
every fourth look (as a run's state changes). N light sessions (bench/light_client.py) follow it for `--seconds`;
a session that has no poll timer and got nothing for 3 s has stopped. The same app runs twice on fresh servers:
with `keep_polling`, and with it replaced by a no-op (the control).

Usage: python bench/bench_poll_timer.py [--sessions 25] [--seconds 60] [--json]
Exit status 0 when no session stopped with keep_polling; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.light_client import LightSession, now_ms  # noqa: E402
from ui.server_process import AppServer  # noqa: E402

APP = '''import sys, time
sys.path.insert(0, {root!r})
import streamlit as st
from ui import views
if {control!r}:
    views.keep_polling = lambda every: None  # the control: live() without the repeated timer
ss = st.session_state
ss.full = ss.get("full", 0) + 1
st.markdown(f"**Run full{{ss.full}}**")
st.button("go", key="go")
t = time.perf_counter()
while time.perf_counter() - t < 0.02:  # a page's own work, holding the interpreter as the app's pages do
    pass
def render():
    ss.ticks = ss.get("ticks", 0) + 1
    st.markdown(f"tick {{ss.ticks}}")
    return True
def changed():  # every fourth look, as when a run's state changes: a full rerun from the fragment
    ss.looks = ss.get("looks", 0) + 1
    return ss.looks % 4 == 0
views.live(render, active=True, every=0.3, changed=changed)
'''
QUIET_MS = 3000


async def follow(url: str, n: int, seconds: float) -> dict:
    sessions = [LightSession(url, page="") for _ in range(n)]
    tasks = [asyncio.ensure_future(s.run()) for s in sessions]
    for s in sessions:
        await s.loaded("go")
    await asyncio.sleep(seconds)
    stopped = [s for s in sessions if not s.polling and now_ms() - (s.last_message_at or 0) > QUIET_MS]
    out = {"sessions": n, "stopped": len(stopped), "messages": sum(s.stats["messages"] for s in sessions),
           "last_messages_of_one_stopped": list(stopped[0].trace)[-12:] if stopped else []}
    for s in sessions:
        await s.close()
    await asyncio.wait(tasks, timeout=10)
    return out


def run(control: bool, n: int, seconds: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="tl_poll_timer_"))
    (folder / "app.py").write_text(APP.format(root=str(ROOT), control=control))
    command = ("-m", "streamlit", "run", str(folder / "app.py"))
    with AppServer(folder, folder / "streamlit.log", command=command) as server:
        server.wait_healthy()
        return asyncio.run(follow(server.url, n, seconds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    result = {"keep_polling": run(False, args.sessions, args.seconds),
              "without": run(True, args.sessions, args.seconds)}
    result["wall_s"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for k in ("keep_polling", "without"):
            r = result[k]
            print(f"{k}: {r['stopped']} of {r['sessions']} sessions stopped polling in {args.seconds:g} s "
                  f"({r['messages']} messages)")
    return 0 if result["keep_polling"]["stopped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
