"""The run store: one SQLite file (WAL, so the app's readers never block a training writer) and an
artifacts folder per run holding what is needed to reload and predict.

It listens to the engine's event stream like any other consumer, so a run is
recorded the same way from the CLI, the app or a test. Each run keeps its plan (what trained, per block and per
epoch, and for how long: tl_core.engine.plan.RunPlan) from its first event; a row written before runs carried
plans reads back with `plan` None.

Each run also keeps the moments of its way through the server, in Unix seconds (`times` in its record): submitted
(the job manager's, when a page queued it), started (its first event recorded), first_epoch (its first epoch's
metrics recorded: the first curve point a page can show) and finished (its last event recorded, artifacts saved).
A benchmark reads a class's server-side timings from them (bench/bench_classroom.py); rows written before read
back None.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from tl_core.events import EpochMetrics, Event, RunFinished, RunStarted
from tl_core.paths import default_root  # noqa: F401  (public here too: store.default_root)
from tl_core.records import JobState, RunSummary
from tl_core.runs.sqlite_files import create_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, owner TEXT, created_at TEXT, finished_at TEXT, status TEXT,
    device TEXT, dataset TEXT, backbone TEXT, mode TEXT, config TEXT, summary TEXT, error TEXT, plan TEXT,
    submitted_ts REAL, started_ts REAL, first_epoch_ts REAL, finished_ts REAL);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT REFERENCES runs(run_id) ON DELETE CASCADE, epoch INTEGER, train_loss REAL, train_acc REAL,
    val_loss REAL, val_acc REAL, seconds REAL, PRIMARY KEY (run_id, epoch));
CREATE INDEX IF NOT EXISTS runs_by_dataset ON runs(dataset, backbone);
"""
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
#: The moments a run's record keeps (`times`), each a column `<name>_ts`.
TIMES = ("submitted", "started", "first_epoch", "finished")
#: Columns a store made by an earlier version lacks, added when it is opened (their old rows keep NULL).
LATER_COLUMNS = {"plan": "TEXT", **{f"{t}_ts": "REAL" for t in TIMES}}


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer() -> dict:
    """Who is writing a running row: this process, and the server it trains for when it is a worker process
    (tl_core/runs/runners/processes.py). Either one gone and the run cannot finish."""
    server = os.environ.get("TL_WORKER_SERVER_PID", "")
    return {"pid": os.getpid(), **({"server_pid": int(server)} if server.isdigit() else {})}


def _add_later_columns(db: sqlite3.Connection) -> None:
    """A store made before runs carried their plan or their times gains the columns; its old rows keep NULL."""
    have = {r["name"] for r in db.execute("PRAGMA table_info(runs)")}
    for name, kind in LATER_COLUMNS.items():
        if name in have:
            continue
        try:
            db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
        except sqlite3.OperationalError as err:  # another process added it between the look and the change
            if "duplicate column" not in str(err):
                raise


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunStore:
    def __init__(self, path: str | os.PathLike | None = None):
        path = Path(path) if path else default_root() / "runs.sqlite"
        if path.suffix not in (".sqlite", ".db", ".sqlite3"):
            path = path / "runs.sqlite"  # a folder was given
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.artifacts_root = path.parent / "artifacts"
        self._lock = threading.Lock()
        self._create()
        self.mark_interrupted()

    def _create(self) -> None:
        create_wal(self._connect, SCHEMA, _add_later_columns)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _write(self, sql: str, args: tuple = (), *more: tuple[str, tuple]) -> None:
        """One statement, or several in one transaction (`more`: further (sql, args) pairs)."""
        with self._lock, closing(self._connect()) as db, db:
            for q, a in ((sql, args), *more):
                db.execute(q, a)

    # ---- writing ----------------------------------------------------------------
    def create_run(self, run_id: str, config: dict, *, owner: str, device: str = "", status: str = "running",
                   plan: dict | None = None) -> None:
        self._write("INSERT INTO runs (run_id, owner, created_at, status, device, dataset, backbone, mode, config,"
                    " summary, plan, started_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run_id, owner, _now(), status, device, config.get("data"), config.get("backbone"),
                     config.get("mode"), json.dumps(config), json.dumps(_writer()),
                     None if plan is None else json.dumps(plan), time.time()))

    def add_epoch(self, run_id: str, row: dict) -> None:
        """An epoch's metrics; the run's first one also stamps `first_epoch` (its first curve point exists)."""
        self._write("INSERT OR REPLACE INTO epochs VALUES (?,?,?,?,?,?,?)", (run_id, *[row[k] for k in HISTORY_KEYS]),
                    ("UPDATE runs SET first_epoch_ts=? WHERE run_id=? AND first_epoch_ts IS NULL",
                     (time.time(), run_id)))

    def finish(self, run_id: str, status: str, summary: RunSummary | dict, error: str | None = None) -> None:
        self._write("UPDATE runs SET status=?, summary=?, error=?, finished_at=?, finished_ts=? WHERE run_id=?",
                    (str(status), json.dumps(RunSummary.from_dict(summary).to_dict()), error, _now(), time.time(),
                     run_id))

    def mark_submitted(self, run_id: str, at: float) -> None:
        """When the run was queued (Unix seconds): the job manager knows it, the run's row is written where it
        trains, so the manager adds it once the run has started (its row exists)."""
        self._write("UPDATE runs SET submitted_ts=? WHERE run_id=?", (at, run_id))

    def mark_interrupted(self) -> None:
        """Runs left 'running' by a process that died are failed runs: say so instead of spinning forever."""
        with self._lock, closing(self._connect()) as db, db:
            for r in db.execute("SELECT run_id, summary FROM runs WHERE status='running'").fetchall():
                writer = json.loads(r["summary"] or "{}")
                pids = [writer.get("pid"), *([writer["server_pid"]] if "server_pid" in writer else [])]
                if os.getpid() not in pids and not all(_alive(p) for p in pids):
                    db.execute("UPDATE runs SET status='failed', error='interrupted: the process that ran it stopped'"
                               " WHERE run_id=?", (r["run_id"],))

    def delete_run(self, run_id: str, owner: str | None = None) -> bool:
        """Delete a run (only the owner's, when an owner is given) and its artifacts."""
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute("DELETE FROM runs WHERE run_id=?" + (" AND owner=?" if owner else ""),
                             (run_id, owner) if owner else (run_id,))
            deleted = cur.rowcount > 0
        if deleted:
            shutil.rmtree(self.artifacts_dir(run_id, create=False), ignore_errors=True)
        return deleted

    def artifacts_dir(self, run_id: str, create: bool = True) -> Path:
        path = self.artifacts_root / run_id
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- reading ----------------------------------------------------------------
    def _record(self, row: sqlite3.Row, history: list[dict]) -> dict:
        return {"run_id": row["run_id"], "owner": row["owner"], "created_at": row["created_at"],
                "finished_at": row["finished_at"], "status": JobState(row["status"]), "device": row["device"],
                "config": json.loads(row["config"]), "summary": RunSummary.from_dict(json.loads(row["summary"] or "{}")),
                "error": row["error"], "history": history, "plan": json.loads(row["plan"]) if row["plan"] else None,
                "times": {t: row[f"{t}_ts"] for t in TIMES}}

    def get_run(self, run_id: str) -> dict | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                return None
            hist = [dict(r) for r in db.execute(
                f"SELECT {','.join(HISTORY_KEYS)} FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,))]
        return self._record(row, hist)

    def list_runs(self, *, owner: str | None = None, dataset: str | None = None, backbone: str | None = None,
                  status: str | None = None, with_history: bool = True) -> list[dict]:
        where, args = [], []
        for col, val in (("owner", owner), ("dataset", dataset), ("backbone", backbone), ("status", status)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at DESC, rowid DESC"
        with closing(self._connect()) as db:
            rows = db.execute(sql, args).fetchall()
            hist: dict[str, list[dict]] = {r["run_id"]: [] for r in rows}
            if with_history and rows:
                marks = ",".join("?" * len(rows))
                for r in db.execute(f"SELECT run_id,{','.join(HISTORY_KEYS)} FROM epochs WHERE run_id IN ({marks})"
                                    " ORDER BY epoch", list(hist)):
                    hist[r["run_id"]].append({k: r[k] for k in HISTORY_KEYS})
        return [self._record(r, hist[r["run_id"]]) for r in rows]

    # ---- the event consumer -----------------------------------------------------------
    def recorder(self, *, owner: str, model=None):
        return _Recorder(self, owner, model)


class _Recorder:
    """Writes a run's events to the store; on completion saves the weights and preprocessing."""

    def __init__(self, store: RunStore, owner: str, model):
        self.store, self.owner, self.model = store, owner, model
        self.run_id: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.store.create_run(event.run_id, event.config, owner=self.owner, device=event.device, plan=event.plan)
        elif isinstance(event, EpochMetrics) and self.run_id:
            self.store.add_epoch(self.run_id, {k: getattr(event, k) for k in HISTORY_KEYS})
        elif isinstance(event, RunFinished) and self.run_id:
            summary, status, error = event.summary, event.status, event.error
            if status == "completed" and self.model is not None:
                from tl_core.runs.artifacts import save_artifacts

                try:
                    save_artifacts(self.model, summary.classes, self.store.artifacts_dir(self.run_id))
                except Exception as err:  # noqa: BLE001 - the row must never stay "running"
                    status, error = "failed", f"the run finished but its model could not be saved: {err}"
            self.store.finish(self.run_id, status, summary, error)
