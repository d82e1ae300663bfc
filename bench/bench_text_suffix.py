"""What caching the frozen bottom of a text encoder saves, as a ratio measured in one run (these machines are noisy).

A depth-k fine-tune of the bundled MiniLM (6 layers; k = half of them frozen, with the embeddings: --freeze-depth 4)
on builtin:sentiment, trained twice by the real loop (`training.fit`, same split, head, seed and batches):

  cached : the hidden states entering layer 3 are computed once with their attention mask; each step runs layers
           3-5, the pooling and the head (tl_core.models.text_arch)
  full   : the same loop with the cache turned off: the whole encoder runs every step

  full epoch / cached epoch   (an epoch: its training steps plus the validation pass; the fastest epoch of
                               --repeats runs per side, the runs interleaved: on a shared machine the fastest is
                               the one least disturbed by other work)

The two runs must also reach the same validation accuracy curve up to float noise: the cache changes the cost, not
the computation.

Both sides train exactly --epochs (the "fixed" budget): the figure is a time per epoch, not a run to convergence.

Usage: python bench/bench_text_suffix.py [--device auto|cpu|cuda] [--labels-per-class 20] [--max-length 64]
       [--epochs 2] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tl_core.config import TrainConfig  # noqa: E402
from tl_core.engine import activations, training  # noqa: E402


@contextlib.contextmanager
def full_encoder_loop():
    """The baseline: the same `fit` with the activation cache refused, so every step runs the whole encoder.
    `fit` asks `activations.cache_fits` (through the module, at each run's start), so that is what is swapped."""
    original = activations.cache_fits
    activations.cache_fits = lambda prep: False
    try:
        yield
    finally:
        activations.cache_fits = original


def fastest_epoch(result: training.RunResult) -> float:
    return min(h["seconds"] for h in result.history)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--labels-per-class", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--freeze-depth", type=int, default=4, help="blocks frozen: embeddings + 3 of MiniLM's 6 layers")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    config = TrainConfig(data="builtin:sentiment", backbone="all-MiniLM-L6-v2", mode="finetune",
                         freeze_depth=args.freeze_depth, epochs=args.epochs, budget="fixed",
                         labels_per_class=args.labels_per_class,
                         max_length=args.max_length, device=args.device)

    training.train(TrainConfig(**{**config.to_dict(), "epochs": 1}))  # warm-up: first-call allocations, data load
    cached_runs, full_runs = [], []
    for _ in range(args.repeats):  # interleaved, so a burst of load from elsewhere hits both sides alike
        cached_runs.append(training.train(TrainConfig(**config.to_dict())))
        with full_encoder_loop():
            full_runs.append(training.train(TrainConfig(**config.to_dict())))
    cached, full = cached_runs[0], full_runs[0]
    assert all(r.summary["cached_boundary"] for r in cached_runs) and not any(r.summary["cached_boundary"]
                                                                             for r in full_runs)
    t_cached = min(fastest_epoch(r) for r in cached_runs)
    t_full = min(fastest_epoch(r) for r in full_runs)

    val_cached = [h["val_acc"] for h in cached.history]
    val_full = [h["val_acc"] for h in full.history]
    figures = {
        "device": cached.summary["device"],
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and "cuda" in cached.summary["device"] else None,
        "n_train": cached.summary["n_train"], "n_val": cached.summary["n_val"], "max_length": args.max_length,
        "freeze_depth": args.freeze_depth, "epochs": args.epochs,
        "cached_boundary": cached.summary["cached_boundary"],
        "cached_epoch_s": t_cached, "full_epoch_s": t_full, "full_over_cached": t_full / t_cached,
        "val_acc_cached": val_cached, "val_acc_full": val_full,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"device {figures['device']} {figures['gpu'] or ''}  {figures['n_train']} train / {figures['n_val']} val, "
              f"max_length {args.max_length}, all-MiniLM-L6-v2 fine-tune at depth {args.freeze_depth} "
              f"(cached {figures['cached_boundary']})")
        print(f"epoch, cached suffix      {t_cached:7.3f} s")
        print(f"epoch, whole encoder      {t_full:7.3f} s   ratio {figures['full_over_cached']:.2f}x slower than cached")
        print(f"val acc per epoch: cached {', '.join(f'{v:.3f}' for v in val_cached)}; "
              f"whole {', '.join(f'{v:.3f}' for v in val_full)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
