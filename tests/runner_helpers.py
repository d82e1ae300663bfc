"""What the runner tests share: a tiny run, a long one to cancel or kill, and waiting until one trains."""

from __future__ import annotations

import time

from tl_core.config import TrainConfig

TINY = TrainConfig(data="builtin:digits", backbone="mobilenet_v2", mode="frozen", image_size=32, epochs=2,
                   labels_per_class=5, val_per_class=5, test_per_class=5)
LONG = TrainConfig(**{**TINY.to_dict(), "mode": "scratch", "epochs": 500, "budget": "fixed", "batch_size": 4})


def wait_for_steps(manager, job_id, timeout=120):
    """The job's snapshot once it has taken an optimizer step (or ended)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = manager.snapshot(job_id)
        if snap.global_step > 0 or snap.done:
            return snap
        time.sleep(0.05)
    raise TimeoutError(job_id)
