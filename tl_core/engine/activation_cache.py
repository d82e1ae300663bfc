"""The shared activation cache: frozen features computed once per machine, not once per run.

Thirty students running feature extraction on the same built-in set would otherwise run the same frozen backbone
over the same images thirty times. The boundary activations a run caches (tl_core.engine.activations) are kept on disk,
under `<data folder>/activation-cache/` ($TL_ACTIVATION_CACHE_DIR overrides the folder), where every run, in any
process or session on this machine, finds them.

Content-addressed: an entry's name is the sha256 of everything that determines the activations (`part_key`): the
backbone, a digest of every parameter AND buffer that runs before the boundary (BatchNorm running statistics
included, which AdaBN changes), the preprocessing, the image size or max length, the data's content, the items of
that part, the shift of the out-of-distribution copy (and the seed it was drawn with), the depth, the device type
and compute dtype, and the torch version. Nothing else can make two runs share an entry.

Bounded: at most $TL_ACTIVATION_CACHE_MB megabytes (default 2048), least recently used entries evicted after each
write (a hit touches the entry's mtime). 0 MB, or TL_ACTIVATION_CACHE=off, turns the cache off: every run computes
its activations itself.

Safe with concurrent runs: entries are written to a temporary file in the same folder and renamed into place
(atomic), and a miss takes an inter-process `fcntl.flock` lock on its keys, then looks again, so thirty identical
runs started at once run the backbone once and the other twenty-nine read its result.

Never trusted blindly: an entry stores the sha256 of its tensor's bytes and its key; a read that does not match
(or a truncated, unreadable file) deletes the entry and the run computes again. Entries load with
`torch.load(..., weights_only=True)`.

The forward-pass counter (`forward_passes()`), persisted in `counter.sqlite` beside the entries: it counts RUNS
that had to run their frozen blocks over their items to get the boundary activations, because the cache missed or
is off. A run counts at most once, however many of its parts (train, validation, test, shifted test) it computed.
A run served entirely from the cache does not count (it counts under `hits` instead). Runs that cache no
activations (augmentation, or nothing frozen) run the whole network every step and are not counted. The ranking's
feature extraction counts once per backbone whose features it computed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from tl_core.paths import default_root

ENV_SWITCH = "TL_ACTIVATION_CACHE"  # "off" (or 0/false/no) turns the cache off
ENV_MB = "TL_ACTIVATION_CACHE_MB"  # the size budget; 0 turns the cache off
ENV_DIR = "TL_ACTIVATION_CACHE_DIR"  # the folder, instead of <data folder>/activation-cache
DEFAULT_MB = 2048
FORMAT = 2  # bump when the entry layout or the key changes: old entries are then simply never read again
LOCK_BUCKETS = 256  # lock files by the key's first two hex digits: a fixed set of files, never deleted
STALE_TEMP_S = 3600  # temporary files older than this were left by a process that died while writing
SUFFIX = ".pt"


# ---- settings -----------------------------------------------------------------------------------------------
def folder() -> Path:
    return Path(os.environ[ENV_DIR]) if os.environ.get(ENV_DIR) else default_root() / "activation-cache"


def budget_bytes() -> int:
    """The size budget in bytes; 0 when the cache is off."""
    if os.environ.get(ENV_SWITCH, "").strip().lower() in ("off", "0", "false", "no"):
        return 0
    raw = os.environ.get(ENV_MB, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MB
    except ValueError:
        mb = DEFAULT_MB
    return max(0, int(mb * 2**20))


def enabled() -> bool:
    return budget_bytes() > 0


# ---- keys ---------------------------------------------------------------------------------------------------
def _tensor_bytes(t: torch.Tensor) -> bytes:
    """The values in row-major order, whatever the memory format (channels-last weights hash like any others)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bool or t.numel() == 0:
        return t.to(torch.uint8).numpy().tobytes()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def prefix_digests(model, depth: int) -> list[str]:
    """`weights_digest` of every shallower boundary too, [0 .. depth], in one pass: each block's tensors are hashed
    once and a boundary's digest chains those of the blocks before it (a sweep looks up every prefix)."""
    blocks = [hashlib.sha256() for _ in range(depth)]
    head = model.head_param_names()
    for name, t in sorted(model.state_dict(keep_vars=False).items()):
        owner = model.block_of(name, head) if isinstance(t, torch.Tensor) else -1
        if 0 <= owner < depth:
            blocks[owner].update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            blocks[owner].update(_tensor_bytes(t))
    chain, out = hashlib.sha256(), [hashlib.sha256().hexdigest()]
    for block in blocks:
        chain.update(block.digest())
        out.append(chain.hexdigest())
    return out


def weights_digest(model, depth: int) -> str:
    """sha256 over every parameter and buffer of blocks [0, depth): what runs before the boundary. The head never
    counts; running statistics do (AdaBN and a different seed's random init both change the digest)."""
    return prefix_digests(model, depth)[depth]


def items_digest(items: Iterable[int]) -> str:
    return hashlib.sha256(np.asarray(list(items) if not isinstance(items, np.ndarray) else items,
                                     dtype=np.int64).tobytes()).hexdigest()


def part_key(*, backbone: str, weights: str, preprocess: dict, data: str, items: str, depth: int, precision: str,
             shift: str = "", shift_seed: int | None = None) -> str:
    """The entry name: sha256 of everything that determines one part's boundary activations."""
    fields = {"format": FORMAT, "torch": torch.__version__.split("+")[0], "backbone": backbone, "weights": weights,
              "preprocess": preprocess, "data": data, "items": items, "depth": depth, "precision": precision,
              "shift": shift or "", "shift_seed": shift_seed if shift else None}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


# ---- entries ------------------------------------------------------------------------------------------------
def _path(key: str) -> Path:
    return folder() / f"{key}{SUFFIX}"


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read(key: str) -> torch.Tensor | None:
    """The entry's tensor (on the CPU), or None: missing, or failed its check (then it is deleted)."""
    path = _path(key)
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        tensor = entry["tensor"]
        ok = (entry.get("format") == FORMAT and entry.get("key") == key and isinstance(tensor, torch.Tensor)
              and hashlib.sha256(_tensor_bytes(tensor)).hexdigest() == entry.get("sha256"))
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - truncated, garbled or foreign: never used, recomputed
        ok = False
    if not ok:
        _discard(path)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # least recently used: a hit makes the entry young again
    return tensor


def write(key: str, tensor: torch.Tensor) -> bool:
    """Store the tensor (moved to the CPU) under `key`, atomically; then evict down to the budget. False when the
    cache is off or the tensor alone is bigger than the budget."""
    budget = budget_bytes()
    tensor = tensor.detach().cpu()
    if not budget or tensor.numel() * tensor.element_size() > budget:
        return False
    where = folder()
    where.mkdir(parents=True, exist_ok=True)
    entry = {"format": FORMAT, "key": key, "sha256": hashlib.sha256(_tensor_bytes(tensor)).hexdigest(),
             "tensor": tensor}
    tmp = where / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        torch.save(entry, tmp)
        os.replace(tmp, _path(key))
    except OSError:
        _discard(tmp)
        return False
    evict(budget, keep=key)
    return True


def entries() -> list[tuple[Path, int, float]]:
    """(path, bytes, last used) of every entry."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        for path in folder().glob(f"*{SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                out.append((path, st.st_size, st.st_mtime))
    return out


def evict(budget: int | None = None, keep: str | None = None) -> int:
    """Delete least recently used entries until the total fits `budget` (and temporary files a dead writer left).
    Returns the entries deleted. A reader that opened an entry before it goes still reads it whole (POSIX)."""
    budget = budget_bytes() if budget is None else budget
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for tmp in folder().glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if now - tmp.stat().st_mtime > STALE_TEMP_S:
                    _discard(tmp)
    found = sorted(entries(), key=lambda e: e[2])
    total, deleted = sum(size for _, size, _ in found), 0
    for path, size, _ in found:
        if total <= budget:
            break
        if keep and path.name == f"{keep}{SUFFIX}":
            continue
        _discard(path)
        total, deleted = total - size, deleted + 1
    return deleted


@contextlib.contextmanager
def locked(keys: Iterable[str]):
    """Hold the inter-process locks of these keys (sorted, so two runs never wait on each other in a circle)."""
    where = folder() / "locks"
    where.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for bucket in sorted({k[:2] for k in keys}):
            handle = stack.enter_context(open(where / f"{bucket}.lock", "a+b"))
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            stack.callback(fcntl.flock, handle.fileno(), fcntl.LOCK_UN)
        yield


# ---- the counter --------------------------------------------------------------------------------------------
def _counter() -> sqlite3.Connection:
    where = folder()
    where.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(where / "counter.sqlite", timeout=60, isolation_level=None)
    con.execute("CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    return con


def _bump(name: str) -> None:
    with contextlib.closing(_counter()) as con:
        con.execute("INSERT INTO counts VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET n = n + 1", (name,))


def _count(name: str) -> int:
    with contextlib.closing(_counter()) as con:
        row = con.execute("SELECT n FROM counts WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def count(what: str) -> None:
    """Add one to a counter: "forward_passes" (see the module's docstring), "hits" or "prefix_reuses" (a part
    computed from a shallower boundary's cached activations: only the blocks between ran)."""
    _bump(what)


def forward_passes() -> int:
    """Runs (on this machine, all processes, since the counter file was made) that ran their frozen blocks over
    their items because the cache missed or was off. Read it before and after a benchmark."""
    return _count("forward_passes")


def stats() -> dict:
    """The counters and the cache's size, for the CLI and benchmarks."""
    found = entries()
    return {"folder": str(folder()), "enabled": enabled(), "budget_mb": budget_bytes() / 2**20,
            "forward_passes": forward_passes(), "hits": _count("hits"), "prefix_reuses": _count("prefix_reuses"),
            "entries": len(found),
            "mb": sum(size for _, size, _ in found) / 2**20}


# ---- one run's parts ----------------------------------------------------------------------------------------
class RunActivations:
    """The boundary activations of one run's parts (train, val, test, ood), through the shared cache.

    `first(parts)` gives the parts the loop needs now. If they are all in the cache the run is a hit and the
    others are read when `later(part)` asks for them. If any is missing, the run takes the locks of ALL its parts,
    looks again (another process may just have written them), and computes every part still missing, the later
    ones too: the backbone is warm, and the next identical run then finds everything, so thirty identical runs
    started together count one forward pass, not one per run that reaches its test split first.
    `status` ends "hit", "miss" or "off"; the run counts in `forward_passes()` at most once.
    """

    def __init__(self, keys: dict[str, str], compute: Callable[[str], torch.Tensor], device: torch.device | None = None):
        self.keys, self.compute, self.device = keys, compute, device
        self.status = "off" if not enabled() else None
        self._held: dict[str, torch.Tensor] = {}
        self._counted = False

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.device is None else t.to(self.device)

    def _computed(self) -> None:
        if not self._counted:
            self._counted = True
            _bump("forward_passes")
        if self.status != "off":
            self.status = "miss"

    def first(self, parts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.status == "off":
            self._computed()
            return {p: self.compute(p) for p in parts}
        got = {p: read(self.keys[p]) for p in parts}
        if all(t is not None for t in got.values()):
            self.status = "hit"
            _bump("hits")
            return {p: self._to_device(t) for p, t in got.items()}
        with locked(self.keys.values()):
            for part, key in self.keys.items():
                t = got.get(part)
                if t is None:
                    t = read(key)
                if t is None:
                    self._computed()
                    t = self.compute(part)
                    write(key, t)
                    got[part] = t
                elif part not in parts:
                    continue  # already in the cache: read when asked for
                got[part] = self._to_device(t)
        self._held = {p: t for p, t in got.items() if p not in parts}
        if self.status is None:  # every part turned up while we waited for the lock: another run computed them
            self.status = "hit"
            _bump("hits")
        return {p: got[p] for p in parts}

    def later(self, part: str) -> torch.Tensor:
        if part in self._held:
            return self._held.pop(part)
        if self.status == "off":
            return self.compute(part)
        t = read(self.keys[part])
        if t is None:  # evicted since the run started, or never stored (bigger than the budget)
            with locked([self.keys[part]]):
                t = read(self.keys[part])
                if t is None:
                    self._computed()
                    t = self.compute(part)
                    write(self.keys[part], t)
                    return t
        return self._to_device(t)
