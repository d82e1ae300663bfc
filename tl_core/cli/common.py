"""What every command shares: the one-line failure, the run store the flags name, Ctrl-C as a cancel."""

from __future__ import annotations

import contextlib
import signal
import sys


def fail(message: str, code: int = 2) -> int:
    """One line on stderr that says what is wrong and what to do; the exit code (2: bad input)."""
    print(f"error: {message}", file=sys.stderr)
    return code


def open_store(args):
    """The run store `--store` names, else the default one ($TL_DATA_DIR or ~/.local/share/transfer-lab)."""
    from tl_core.runs.store import RunStore

    return RunStore(args.store) if args.store else RunStore()


@contextlib.contextmanager
def ctrl_c_cancels():
    """A CancelToken that Ctrl-C sets, so an interrupted run is recorded as cancelled instead of vanishing."""
    from tl_core.events import CancelToken

    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)
