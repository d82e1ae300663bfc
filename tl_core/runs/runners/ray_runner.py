"""Runs on a Ray cluster (the `ray` runner): a classroom whose runs no longer fit on the server's machine.

Each run is one Ray actor, placed by Ray on a node that has the resources the run asks for (`num_cpus`,
and one GPU when the run's device is cuda or auto and the cluster has GPUs). The actor trains with the same
body as every other runner (`train_here`), keeps the engine's events, and the app long-polls them, so the
page's curve moves while the run trains. The app records the run in its own run store from those events:
the nodes need no access to the app's disk. The trained weights travel back as the files `save_artifacts`
wrote on the node and land in the run's artifacts folder before its RunFinished is recorded, so Predict and
Export work on a Ray-trained run exactly as on a local one.

Cancel is the actor's own flag, checked every batch by the training loop; an actor that does not stop within
`CANCEL_GRACE_S` is killed. A worker process killed or a node lost mid-run fails the run with one line
(RunnerError) and the app keeps serving: the next run gets a new actor.

The app never starts a cluster by surprise: it connects to `address` or $TL_RAY_ADDRESS ("HOST:6379" from a
cluster node, "ray://HOST:10001" from anywhere, "auto" for the cluster started on this machine); unset is a
ConfigError that says how to set it, and "local" starts a throwaway cluster in this process only when asked.
Ray is optional (`make setup-ray`): this module imports it only when the runner is made.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path, PurePosixPath

from tl_core.config import TrainConfig
from tl_core.errors import MEMORY_ADVICE, ConfigError, RunnerError, UserError, failure_text
from tl_core.events import Cancelled, CancelToken, EventHandler, RunFinished, RunStarted
from tl_core.records import RunSummary
from tl_core.runs.runners.base import RunRequest
from tl_core.runs.store import RunStore

_log = logging.getLogger(__name__)
ADDRESS_ENV = "TL_RAY_ADDRESS"  # where the cluster is (see the module's docstring)
CPUS_ENV = "TL_RAY_CPUS_PER_RUN"  # CPUs each run asks Ray for, at least its config's threads (default 1)
POLL_S = 0.1  # how often the app looks at the cancel token while it waits for events
LONG_POLL_S = 1.0  # an actor answers a poll as soon as it has events, or after this long
CANCEL_GRACE_S = 10.0  # a run that has not stopped this long after its cancel is killed
SETUP_HINT = "run `make setup-ray` (or pip install -r requirements-ray.txt into the app's environment)"


def import_ray():
    """Ray, or a ConfigError saying how to install it: the app and every other runner work without it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"the ray runner needs Ray, which is not installed: {SETUP_HINT}") from None
    return ray


class RayRunner:
    name = "ray"

    def __init__(self, store: RunStore, workers: int = 1, address: str | None = None, *,
                 cpus_per_run: float | None = None, ship_code: bool = True, warm: bool = True):
        """`workers`: how many actors stay warm between runs (the job manager passes its limit of concurrent
        runs); where runs train is Ray's choice. `warm` starts one actor now, as the local runner starts its
        workers with the server. `ship_code` sends this checkout's `tl_core` with the runs (Ray's
        py_modules), so the nodes train with the app's engine; they need only the same Python packages
        (`make setup setup-ray`)."""
        self.ray = import_ray()
        self.store = store
        self.address = (address or os.environ.get(ADDRESS_ENV) or os.environ.get("RAY_ADDRESS") or "").strip()
        if not self.address:
            raise ConfigError(f"the ray runner needs a cluster: set {ADDRESS_ENV} to its address (HEAD:6379 on a "
                              "cluster node, ray://HEAD:10001 from elsewhere, auto for `ray start --head` on this "
                              "machine, or local to start a throwaway one here)")
        self.cpus_per_run = float(cpus_per_run or os.environ.get(CPUS_ENV) or 1)
        self.max_idle = max(1, int(workers))
        self._owns_connection = not self.ray.is_initialized()
        if self._owns_connection:
            self._connect(ship_code)
        self._actor_class = self.ray.remote(_RunActor)
        self._lock = threading.Lock()
        self._busy: dict[str, object] = {}  # job id -> its actor
        self._idle: list[tuple[tuple, object]] = []  # (resources, actor) of runs that ended cleanly
        self._runs = itertools.count(1)
        self._closed = False
        if warm:
            options = self.resources(TrainConfig())
            self._idle.append((_key(options), self._new_actor(options)))

    def _connect(self, ship_code: bool) -> None:
        runtime_env = {}
        if ship_code:
            import tl_core

            runtime_env = {"py_modules": [str(Path(tl_core.__file__).parent)], "excludes": ["__pycache__", "*.pyc"]}
        try:
            local = {"include_dashboard": False} if self.address == "local" else {}
            self.ray.init(address=self.address, runtime_env=runtime_env, namespace="transfer-lab",
                          logging_level=logging.WARNING, **local)
        except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError, grpc errors: all one line
            raise RunnerError(f"could not connect to the Ray cluster at {self.address} ({_first_line(err)}); "
                              f"start one with `ray start --head` or fix {ADDRESS_ENV}") from None

    # ---- what a run asks for ------------------------------------------------------------
    def resources(self, config) -> dict:
        """The actor options of a run: `num_cpus`, and one GPU when the run may use one and the cluster has
        one. A run no node could ever hold is refused now rather than left pending forever."""
        device = (config.device or "auto").lower()
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if device == "cuda" and gpus < 1:
            raise ConfigError("device 'cuda' was asked for but the Ray cluster has no GPU: use device auto or cpu")
        cpus = max(self.cpus_per_run, float(getattr(config, "threads", 1) or 1))  # the run trains on that many
        options = {"num_cpus": cpus, "num_gpus": 1 if device in ("cuda", "auto") and gpus >= 1 else 0}
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if not any(r.get("CPU", 0) >= options["num_cpus"] and r.get("GPU", 0) >= options["num_gpus"] for r in nodes):
            gpu = " and a GPU" if options["num_gpus"] else ""
            raise RunnerError(f"no node of the Ray cluster at {self.address} has {options['num_cpus']:g} CPUs{gpu} "
                              f"for a run (set {CPUS_ENV} lower, or add a node)")
        return options

    def busy_pid(self, job_id: str, timeout: float = 30.0) -> int | None:
        """The process id of the Ray worker training `job_id` (on its node), once it has started."""
        with self._lock:
            actor = self._busy.get(job_id)
        return None if actor is None else self.ray.get(actor.where.remote(), timeout=timeout)["pid"]

    # ---- the actors ---------------------------------------------------------------------
    def _new_actor(self, options: dict):
        return self._actor_class.options(**options, max_restarts=0, max_concurrency=4).remote()

    def _take(self, options: dict):
        """A warm actor with these resources, else a new one. Idle actors asking for other resources are
        let go: they hold CPUs (or a GPU) the new one may need."""
        key = _key(options)
        with self._lock:
            same = [a for k, a in self._idle if k == key]
            others = [a for k, a in self._idle if k != key]
            self._idle = []
        for actor in others:
            self._kill(actor)
        while same:
            actor = same.pop()
            try:  # an idle actor whose node left meanwhile is not given a run
                self.ray.get(actor.where.remote(), timeout=10)
            except self.ray.exceptions.GetTimeoutError:
                pass  # still starting (the warm one): it takes the run once it is up
            except Exception:  # noqa: BLE001 - RayActorError: gone
                self._kill(actor)
                continue
            with self._lock:
                self._idle.extend((key, a) for a in same)
            return actor
        return self._new_actor(options)

    def _give_back(self, options: dict, actor, reusable: bool) -> None:
        with self._lock:
            keep = reusable and not self._closed and len(self._idle) < self.max_idle
            if keep:
                self._idle.append((_key(options), actor))
        if not keep:
            self._kill(actor)

    def _kill(self, actor) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass

    # ---- one run ----------------------------------------------------------------------
    def run(self, request: RunRequest, emit: EventHandler, cancel: CancelToken) -> None:
        if self._closed:
            raise RunnerError("the ray runner has been shut down")
        cancel.check()
        options = self.resources(request.config)
        actor, reusable = self._take(options), False
        with self._lock:
            self._busy[request.job_id] = actor
        run = _AppSide(self.store, request, emit)
        try:
            outcome, reusable = self._follow(actor, next(self._runs), request, run, cancel)
        finally:
            with self._lock:
                self._busy.pop(request.job_id, None)
            self._give_back(options, actor, reusable)
        run.end(outcome)

    def _follow(self, actor, seq: int, request: RunRequest, run: _AppSide, cancel: CancelToken) -> tuple:
        """Relay the actor's events until it has trained; returns its outcome and whether the actor may take
        another run. A lost actor fails the run."""
        ray = self.ray
        train_ref = actor.train.remote(seq, request)  # an uploaded dataset travels with the call
        poll_ref, seen, cancelled_at, killed = actor.poll.remote(seq, 0, LONG_POLL_S), 0, None, False
        try:
            while True:
                if cancel.cancelled and cancelled_at is None:
                    cancelled_at = time.time()
                    actor.cancel.remote(seq)
                elif cancelled_at is not None and not killed and time.time() - cancelled_at > CANCEL_GRACE_S:
                    _log.warning("run %s ignored its cancel for %.0fs: killing its actor", request.job_id, CANCEL_GRACE_S)
                    killed = True
                    ray.kill(actor, no_restart=True)
                waiting = [poll_ref] if train_ref is None else [poll_ref, train_ref]
                ready, _ = ray.wait(waiting, num_returns=1, timeout=POLL_S)
                if train_ref is not None and train_ref in ready:
                    outcome, train_ref = ray.get(train_ref), None  # raises when the call itself failed
                if poll_ref in ready:
                    events, ended = ray.get(poll_ref)
                    seen += len(events)
                    for event in events:
                        run.relay(event)
                    if ended:
                        return (outcome if train_ref is None else ray.get(train_ref)), True
                    poll_ref = actor.poll.remote(seq, seen, LONG_POLL_S)
        except ray.exceptions.RayError as err:
            if killed:  # the last resort of a cancel
                return ("cancelled", None), False
            reason = _lost_reason(ray, err)
            _log.warning("ray run %s lost: %s (%s)", request.job_id, reason, _first_line(err))
            run.fail(reason)
            raise RunnerError(reason) from None

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            actors = [*self._busy.values(), *(a for _, a in self._idle)]
            self._idle = []
        for actor in actors:
            self._kill(actor)
        if self._owns_connection and self.ray.is_initialized():
            self.ray.shutdown()


def _key(options: dict) -> tuple:
    return tuple(sorted(options.items()))


class _AppSide:
    """The run as the app records it: every event into the run store and on to the job, except RunFinished,
    which waits until the weights are in the artifacts folder."""

    def __init__(self, store: RunStore, request: RunRequest, emit: EventHandler):
        self.store, self.emit = store, emit
        self.recorder = store.recorder(owner=request.owner, model=None)
        self.run_id: str | None = None
        self.finished: RunFinished | None = None

    def relay(self, event) -> None:
        if isinstance(event, RunFinished):
            self.finished = event
            return
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
        self.recorder(event)
        self.emit(event)

    def fail(self, reason: str) -> None:
        if self.run_id is not None:
            self.store.finish(self.run_id, "failed", RunSummary(), reason)

    def end(self, outcome: tuple) -> None:
        kind, payload = outcome
        finished = self.finished
        if kind == "cancelled" and finished is None:
            if self.run_id is None:
                raise Cancelled()
            finished = RunFinished(self.run_id, "cancelled")
        if kind == "done" and finished is not None and finished.status == "completed":
            try:
                self._write_artifacts(payload or {})
            except Exception as err:  # noqa: BLE001 - the row must never stay "running"
                finished = replace(finished, status="failed", error=f"the run finished but its model could not "
                                                                   f"be saved: {_first_line(err)}")
        if finished is None and self.run_id is not None:  # cannot happen with fit(); the row must still end
            finished = RunFinished(self.run_id, "failed", RunSummary(), payload if kind == "error" else "no result")
        if finished is not None:
            self.recorder(finished)
            self.emit(finished)
        if kind == "error":
            raise RunnerError(payload)

    def _write_artifacts(self, files: dict[str, bytes]) -> None:
        if not files:
            raise RunnerError("the worker sent no model files")
        folder = self.store.artifacts_dir(self.run_id)
        for name, data in files.items():
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts:
                raise RunnerError(f"unexpected artifact path {name!r}")
            path = folder.joinpath(*rel.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


# ---- on the Ray worker ----------------------------------------------------------------------
class _RunActor:
    """Runs on a Ray worker, one at a time, each numbered by the app (`seq`): a warm actor takes the next run
    without a new process. Threaded (max_concurrency > 1): `train` runs in one thread while `poll`,
    `cancel` and `where` answer in others; the number keeps a late poll or cancel off another run."""

    def __init__(self):
        from tl_core.device import use_cpu_threads

        use_cpu_threads(1)  # until a run sets its own count (TrainConfig.threads) in `prepare`
        import tl_core.engine.training  # noqa: F401 - torch and the engine, while the actor waits for a run

        self._seq = 0
        self._events: list = []
        self._ended = False
        self._changed = threading.Condition()
        self._cancelled: set[int] = set()

    def where(self) -> dict:
        import ray

        return {"pid": os.getpid(), "node": ray.util.get_node_ip_address()}

    def cancel(self, seq: int) -> None:
        self._cancelled.add(seq)

    def poll(self, seq: int, since: int, wait_s: float) -> tuple[list, bool]:
        """Run `seq`'s events after the first `since`, as soon as there are any (at most `wait_s` later), and
        whether it has ended (then every event is in this answer)."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq == seq and (len(self._events) > since or self._ended),
                                   timeout=wait_s)
            if self._seq != seq:
                return [], False
            return self._events[since:], self._ended

    def _emit(self, event) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def train(self, seq: int, request: RunRequest) -> tuple:
        """("done", {relative path: bytes} of the saved model, empty unless completed), ("cancelled", None)
        before the run started, or ("error", one line)."""
        from tl_core.runs.runners.inprocess import train_here

        with self._changed:
            self._seq, self._events, self._ended = seq, [], False
            self._changed.notify_all()
        try:
            result = train_here(None, request, self._emit, CancelToken(_SeqFlag(self._cancelled, seq)))
            return "done", _artifact_files(result) if result.status == "completed" else {}
        except Cancelled:
            return "cancelled", None
        except Exception as err:  # noqa: BLE001 - the job's one line; a bug keeps its traceback in the worker log
            if not isinstance(err, UserError):
                traceback.print_exc()
            return "error", failure_text(err)
        finally:
            with self._changed:
                self._ended = True
                self._cancelled.discard(seq)
                self._changed.notify_all()


class _SeqFlag:
    """Run `seq`'s cancel flag, in the shape CancelToken reads (is_set)."""

    def __init__(self, cancelled: set[int], seq: int):
        self.cancelled, self.seq = cancelled, seq

    def set(self) -> None:
        self.cancelled.add(self.seq)

    def is_set(self) -> bool:
        return self.seq in self.cancelled


def _artifact_files(result) -> dict[str, bytes]:
    """The run's artifacts (tl_core.runs.artifacts) as the app's store would hold them, as bytes to send."""
    from tl_core.runs.artifacts import save_artifacts

    folder = Path(tempfile.mkdtemp(prefix="tl-ray-"))
    try:
        save_artifacts(result.model, result.summary.classes or result.classes, folder)
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- words ----------------------------------------------------------------------------------
def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def _lost_reason(ray, err: BaseException) -> str:
    """One line for a run whose worker went away, whichever of Ray's errors said so."""
    ex, text = ray.exceptions, str(err).lower()
    if isinstance(err, ex.NodeDiedError) or any(s in text for s in ("node has died", "node it was running on is dead")):
        what = "the Ray node training this run left the cluster"
    elif isinstance(err, (ex.RayActorError, ex.WorkerCrashedError)):
        what = f"the Ray worker process training this run died (killed, or out of memory: {MEMORY_ADVICE})"
    else:
        what = f"the Ray cluster lost this run ({type(err).__name__}: {_first_line(err)})"
    return f"{what}; the app is fine and the next run starts on a new worker"
