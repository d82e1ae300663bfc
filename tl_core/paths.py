"""Where Transfer Lab keeps what outlives a process: the run store, sessions, the shared activation cache.

Its own base module so that every layer can find the data folder (the engine's activation cache as well as the
run store) without importing a layer above it.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_root() -> Path:
    """$TL_DATA_DIR, else the XDG data folder: runs outlive the app and the checkout."""
    if os.environ.get("TL_DATA_DIR"):
        return Path(os.environ["TL_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "transfer-lab"
