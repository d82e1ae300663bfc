"""`python -m tl_core`: the contract other tools and checks rely on.

Bad input exits 2 with one line on stderr that says what is wrong and what to
do; Ctrl-C cancels the run (recorded as cancelled) and exits 130.

One module per group of commands: listing.py (backbones, datasets, runs), training_commands.py (train, sweep),
rank_command.py (rank), inspect_commands.py (embed, mistakes), lessons_command.py (lessons); export, predict and
explain come from tl_core.runs. options.py holds the flags they share, common.py the failure line, the store and
Ctrl-C.
"""

from __future__ import annotations

import argparse
import os

from tl_core.cli.common import fail
from tl_core.cli.inspect_commands import add_inspect_commands
from tl_core.cli.lessons_command import add_lessons_command
from tl_core.cli.listing import cmd_backbones, cmd_datasets, cmd_runs
from tl_core.cli.options import add_data_options, add_train_options
from tl_core.cli.rank_command import cmd_rank
from tl_core.cli.training_commands import SUMMARY_KEYS, cmd_sweep, cmd_train  # noqa: F401  (SUMMARY_KEYS: docs/cli.md)
from tl_core.errors import UserError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tl_core", description="Transfer Lab engine: backbones, data, training.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backbones", help="list the backbone registry")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_backbones)
    d = sub.add_parser("datasets", help="list the built-in data sets")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_datasets)
    t = sub.add_parser("train", help="train one run and record it")
    add_train_options(t)
    t.add_argument("--runner", choices=["here", "local", "ray"], default="here",
                   help="where it trains: in this process (default), a worker process, or a Ray cluster "
                        "($TL_RAY_ADDRESS; `make setup-ray`)")
    t.set_defaults(func=cmd_train)
    w = sub.add_parser("sweep", help="a grid of controlled runs: modes x freeze depths x labels per class")
    add_train_options(w)
    w.add_argument("--modes", default="frozen,finetune,scratch")
    w.add_argument("--depths", help="fine-tune freeze depths, e.g. 0,3,5,7")
    w.add_argument("--labels-per-class-list", help="e.g. 5,10,25,50 (overrides --labels-per-class)")
    w.add_argument("--seeds", type=int, default=1, help="seeds per cell (--seed, --seed+1, ...): split and init change")
    w.set_defaults(func=cmd_sweep)
    k = sub.add_parser("rank", help="score every backbone with weights here on the data (LogME, H-score), "
                                    "before training")
    add_data_options(k)
    k.add_argument("--include-random", action="store_true",
                   help="also score random-init copies of the vision backbones (they should rank below)")
    k.add_argument("--backbones", help="comma-separated names (default: every backbone whose weights are here)")
    k.add_argument("--max-per-class", type=int, default=100,
                   help="training items per class to score (the first ones a run with that many labels trains on); "
                        "0 = all")
    k.add_argument("--check", action="store_true",
                   help="train the missing feature-extraction run of each scored backbone (finished ones are reused), "
                        "then print ImageNet top-1, the scores and the frozen test accuracy over seeds, with Pearson's r "
                        "(top-1 vs accuracy) and Kendall's tau (LogME vs accuracy)")
    k.add_argument("--seeds", type=int, default=None,
                   help="--check: seeds per backbone (--seed, --seed+1, ...; default 1)")
    k.set_defaults(func=cmd_rank)
    r = sub.add_parser("runs", help="list stored runs")
    r.add_argument("--data")
    r.add_argument("--store")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)
    from tl_core.runs.export import add_export_commands  # export, predict
    add_export_commands(sub)
    from tl_core.runs.explain import add_explain_command
    add_explain_command(sub)
    add_inspect_commands(sub)  # embed, mistakes
    add_lessons_command(sub)  # lessons
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with a usage line on bad flags
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except UserError as err:
        return fail(str(err))
    except OSError as err:
        return fail(f"{err.strerror or err}: {err.filename or ''}".strip(": "))
