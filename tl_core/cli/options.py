"""The flags `train`, `sweep` and `rank` share, and the TrainConfig they make."""

from __future__ import annotations

import argparse

from tl_core.config import IMAGE_SHIFTS, RECIPES


def add_data_options(t: argparse.ArgumentParser) -> None:
    """What picks the items and their input size: shared by `train`, `sweep` and `rank`, so a ranking scores the
    training items a run on the same options trains on."""
    t.add_argument("--data", required=True, help="builtin:animals | builtin:digits | builtin:sentiment | folder | .zip | .csv")
    t.add_argument("--image-size", type=int, default=None)
    t.add_argument("--labels-per-class", type=int, default=None)
    t.add_argument("--val-per-class", type=int, default=20, help="validation items per class: choose the epoch")
    t.add_argument("--test-per-class", type=int, default=50, help="test items per class: the reported accuracy")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    t.add_argument("--max-length", type=int, default=64, help="text: tokens per example")
    t.add_argument("--text-column")
    t.add_argument("--label-column")
    t.add_argument("--store", help="run store path (default: $TL_DATA_DIR or ~/.local/share/transfer-lab)")
    t.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    t.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_train_options(t: argparse.ArgumentParser) -> None:
    add_data_options(t)
    t.add_argument("--backbone", required=True)
    t.add_argument("--mode", choices=["frozen", "finetune", "scratch"], default=None,
                   help="default: the mode --recipe implies, else frozen")
    t.add_argument("--freeze-depth", type=int, default=None, help="finetune: freeze the first K blocks (0 = train all; default: half the blocks)")
    t.add_argument("--lp-ft", action="store_true",
                   help="finetune: train the new head on frozen features first (LP-FT, Kumar et al. 2022)")
    t.add_argument("--recipe", choices=list(RECIPES), default=None,
                   help="a classic recipe: lp-ft (Kumar et al. 2022); gradual unfreezing and discriminative learning "
                        "rates (ULMFiT, Howard & Ruder 2018); surgical: one block (Lee et al. 2023, with "
                        "--surgical-block); adabn: BatchNorm statistics re-estimated, backbone frozen (Li et al. 2016)")
    t.add_argument("--surgical-block", type=int, default=None,
                   help="--recipe surgical: the index of the one block that trains (0 = the first; see `backbones`)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--lr", type=float, default=None,
                   help="default: 1e-3 finetune; scratch 1e-2 (vision) or 1e-3 (text); frozen heads are fitted by L-BFGS")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--budget", choices=["fixed", "converge"], default=None,
                   help="fixed: exactly --epochs; converge: at least 400 optimizer steps, the epoch chosen on "
                        "validation (default: converge for finetune and scratch; a frozen head is fitted to "
                        "convergence either way)")
    t.add_argument("--threads", type=int, default=1,
                   help="CPU threads the run trains on; part of its numerics (the same config and seed give the "
                        "same numbers at the same count, whatever OMP_NUM_THREADS says)")
    t.add_argument("--ood-shift", default="blur", choices=IMAGE_SHIFTS,
                   help="the shifted copy of the test split for out-of-distribution accuracy (text: typos)")
    t.add_argument("--augment", action="store_true", help="random resized crop + flip (turns activation caching off)")
    t.add_argument("--random-init", action="store_true", help="use random weights even in frozen/finetune mode")


def config_from_args(args):
    """The TrainConfig of `train` and `sweep`'s flags."""
    from tl_core.config import TrainConfig

    mode = args.mode or (RECIPES[args.recipe] if args.recipe else "frozen")  # a recipe implies its mode
    return TrainConfig(data=args.data, backbone=args.backbone, mode=mode, freeze_depth=args.freeze_depth,
                       lp_ft=args.lp_ft, recipe=args.recipe, surgical_block=args.surgical_block, epochs=args.epochs,
                       lr=args.lr, batch_size=args.batch_size, image_size=args.image_size,
                       labels_per_class=args.labels_per_class, val_per_class=args.val_per_class,
                       test_per_class=args.test_per_class, budget=args.budget, ood_shift=args.ood_shift,
                       augment=args.augment, seed=args.seed, device=args.device, threads=args.threads,
                       pretrained=not args.random_init, max_length=args.max_length,
                       text_column=args.text_column, label_column=args.label_column)


def data_config(args):
    """A TrainConfig holding only what `rank` reads: the data, the split and the input size."""
    from tl_core.config import TrainConfig

    return TrainConfig(data=args.data, image_size=args.image_size, labels_per_class=args.labels_per_class,
                       val_per_class=args.val_per_class, test_per_class=args.test_per_class, seed=args.seed,
                       device=args.device, max_length=args.max_length, text_column=args.text_column,
                       label_column=args.label_column)
