"""How much the activation cache saves, as ratios measured in one run (these machines are noisy).
Each figure is the best of two (three for the suffix), so noise hits every side alike.

  frozen run / one no-grad forward pass over train+val        target <= 1.3
  textbook loop (full forward every epoch) / frozen run       target >= 7
  depth-K fine-tune epoch / fwd+bwd through the suffix alone  target <= 1.3

Usage: python bench/bench_training.py [--device auto|cpu|cuda] [--labels-per-class 50] [--depth 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tl_core.engine import training  # noqa: E402
from tl_core.config import TrainConfig  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def forward_pass(prep) -> None:
    """One no-grad forward over every train and val image: the floor for any frozen run."""
    model = prep.model.eval()
    with torch.no_grad(), training._autocast(prep.device):
        for x in (prep.x_train, prep.x_val):
            for s in range(0, len(x), training.EVAL_BATCH):
                model(model.vision_input(x[s:s + training.EVAL_BATCH]))


def textbook_frozen_loop(prep, epochs: int) -> None:
    """The PyTorch tutorial's 'fixed feature extractor': frozen backbone, full forward every batch, every epoch.

    It gets everything ours has (same model, memory layout, batch size, optimiser) except the cache, so the
    ratio measures the cache alone.
    """
    model, cfg = prep.model, prep.config
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.effective_lr())
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(prep.y_train), device=prep.device)
        for s in range(0, len(perm), cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            with training._autocast(prep.device):
                loss = nn.functional.cross_entropy(model(model.vision_input(prep.x_train[idx])).float(), prep.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad(), training._autocast(prep.device):
            for s in range(0, len(prep.y_val), cfg.batch_size):
                model(model.vision_input(prep.x_val[s:s + cfg.batch_size]))


def suffix_fwd_bwd(prep, acts: torch.Tensor) -> None:
    """Forward+backward through the trainable suffix alone over one epoch of cached boundary activations."""
    model, bs = prep.model.train(), prep.config.batch_size
    for s in range(0, len(acts), bs):
        with training._autocast(prep.device):
            loss = nn.functional.cross_entropy(model.suffix(acts[s:s + bs], prep.depth).float(), prep.y_train[s:s + bs])
        loss.backward()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--labels-per-class", type=int, default=50)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    base = dict(data="builtin:animals", backbone="mobilenet_v2", image_size=args.image_size, epochs=args.epochs,
                labels_per_class=args.labels_per_class, device=args.device)

    frozen = training.prepare(TrainConfig(mode="frozen", **base))
    device = frozen.device
    forward_pass(frozen)  # warm-up: first-call allocations are not what we measure
    t_forward = min(timed(lambda: forward_pass(frozen), device) for _ in range(2))
    frozen_result = []
    t_frozen_run = min(timed(lambda: frozen_result.append(training.fit(frozen)), device) for _ in range(2))
    textbook = training.prepare(TrainConfig(mode="frozen", **base))
    t_textbook = min(timed(lambda: textbook_frozen_loop(textbook, args.epochs), device) for _ in range(2))

    tune = training.prepare(TrainConfig(mode="finetune", freeze_depth=args.depth, **base))
    result = training.fit(tune)
    epoch_s = statistics.median(h["seconds"] for h in result.history)
    acts = training._boundary_activations(tune, tune.x_train)
    suffix_fwd_bwd(tune, acts)  # warm-up
    t_suffix = statistics.median(timed(lambda: suffix_fwd_bwd(tune, acts), device) for _ in range(3))

    figures = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "n_train": len(frozen.y_train), "n_val": len(frozen.y_val), "image_size": args.image_size,
        "epochs": args.epochs, "depth": args.depth,
        "forward_pass_s": t_forward, "frozen_run_s": t_frozen_run, "textbook_s": t_textbook,
        "finetune_epoch_s": epoch_s, "suffix_fwd_bwd_s": t_suffix,
        "frozen_run_over_forward": t_frozen_run / t_forward,
        "textbook_over_frozen_run": t_textbook / t_frozen_run,
        "finetune_epoch_over_suffix": epoch_s / t_suffix,
        "frozen_best_val_acc": frozen_result[0].summary["best_val_acc"],
        "finetune_best_val_acc": result.summary["best_val_acc"],
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"device {figures['device']} {figures['gpu'] or ''}  {figures['n_train']} train / {figures['n_val']} val, "
              f"{args.image_size}px, {args.epochs} epochs, mobilenet_v2")
        print(f"one no-grad forward pass        {t_forward:7.2f} s")
        print(f"frozen run (10 epochs, cached)  {t_frozen_run:7.2f} s   ratio {figures['frozen_run_over_forward']:.2f}x forward (target <= 1.3)")
        print(f"textbook frozen loop            {t_textbook:7.2f} s   ratio {figures['textbook_over_frozen_run']:.1f}x slower than ours (target >= 7)")
        print(f"fine-tune epoch, depth {args.depth}        {epoch_s:7.3f} s   ratio {figures['finetune_epoch_over_suffix']:.2f}x suffix fwd+bwd "
              f"({t_suffix:.3f} s, target <= 1.3)")
        print(f"best val acc: frozen {figures['frozen_best_val_acc']:.3f}, fine-tune {figures['finetune_best_val_acc']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
