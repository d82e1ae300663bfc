"""Creating a SQLite file that several processes open at once: the run store and the classroom's lessons."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing


def create_wal(connect: Callable[[], sqlite3.Connection], schema: str,
               migrate: Callable[[sqlite3.Connection], None] | None = None, attempts: int = 100) -> None:
    """The tables of `schema`, in WAL mode. Switching the journal mode takes the file's exclusive lock without
    waiting on SQLite's busy timeout, so two processes opening one new file at once (two servers, or a server and
    its workers) retry for a few seconds instead of failing. `migrate` adds what an older file lacks."""
    for attempt in range(attempts):
        try:
            with closing(connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(schema)
                if migrate is not None:
                    migrate(db)
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
