"""`train` and `sweep`: one run, or a grid of controlled runs, with progress on stderr and JSON on stdout."""

from __future__ import annotations

import json
import sys

from tl_core.cli.common import ctrl_c_cancels, fail, open_store
from tl_core.cli.options import config_from_args
from tl_core.errors import UserError

#: What `train --json` reports of a run's summary (see tl_core.engine.training.fit).
SUMMARY_KEYS = ("freeze_depth", "trainable_params", "total_params", "test_acc", "selected_epoch", "best_val_acc",
                "final_val_acc", "ood_acc", "ood_shift", "health", "budget", "epochs_run", "head_solver", "lr",
                "confusion_matrix", "per_class", "device", "threads", "deterministic", "wall_s", "n_train", "n_val",
                "n_test", "image_size", "cached_boundary", "block_similarity", "lp_ft_probe_val_acc")


class ProgressBar:
    """The CLI's consumer of the event stream: a tqdm bar on stderr plus one line per epoch."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __call__(self, event) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        kind = event.kind
        if kind == "run_started":
            print(f"run {event.run_id}: {event.config['backbone']} {event.config['mode']} on {event.device}, "
                  f"{event.n_train} train / {event.n_val} val, trainable {event.trainable_params:,} of "
                  f"{event.total_params:,} params", file=sys.stderr)
            self.bar = tqdm(total=event.epochs * event.steps_per_epoch, file=sys.stderr, unit="step", leave=False)
        elif kind == "step_progress" and self.bar is not None:
            self.bar.update(1)
            self.bar.set_description(f"epoch {event.epoch}", refresh=False)
            self.bar.set_postfix(loss=f"{event.loss:.3f}", refresh=False)
        elif kind == "epoch_metrics" and self.bar is not None:
            self.bar.write(f"epoch {event.epoch:3d}  train loss {event.train_loss:.3f} acc {event.train_acc:.3f}  "
                           f"val loss {event.val_loss:.3f} acc {event.val_acc:.3f}  ({event.seconds:.1f}s)",
                           file=sys.stderr)
        elif kind == "message":
            (self.bar.write if self.bar else print)(event.text, file=sys.stderr)
        elif kind == "run_finished" and self.bar is not None:
            self.bar.close()


def cmd_train(args) -> int:
    from tl_core.engine.training import train

    config = config_from_args(args)
    if config.mode != "finetune" and args.freeze_depth not in (None, 0):
        return fail(f"--freeze-depth only applies to --mode finetune (got --mode {config.mode})")
    with ctrl_c_cancels() as cancel:
        store = open_store(args)
        if args.runner == "here":
            result = train(config, callbacks=[ProgressBar(args.quiet)], cancel=cancel, store=store, owner="cli")
        else:
            result = _train_on_runner(args.runner, config, store, ProgressBar(args.quiet), cancel)
    if result.status == "cancelled":
        print(f"cancelled: run {result.run_id} recorded as cancelled", file=sys.stderr)
        return 130
    s = result.summary
    out = {"run_id": result.run_id, "backbone": config.backbone, "mode": config.mode, "recipe": config.recipe,
           "store": str(store.path), "classes": result.classes, "history": result.history,
           **{k: s.get(k) for k in SUMMARY_KEYS}}
    if args.json:
        print(json.dumps(out))
        return 0
    recipe = f" ({config.recipe})" if config.recipe else ""
    print(f"run {result.run_id}{recipe}: test acc {out['test_acc']:.3f} at epoch {out['selected_epoch']} (chosen on "
          f"validation: {out['best_val_acc']:.3f}), {out['ood_shift']} shift {out['ood_acc']:.3f}, "
          f"{out['wall_s']:.1f}s on {out['device']} (stored in {store.path})")
    for finding in out["health"] or []:
        print(f"unhealthy: {finding['message']}; {finding['advice']}")
    if out["block_similarity"]:
        change = out["block_similarity"]
        print("change per block (1 - CKA with the pretrained network): "
              + ", ".join(f"{b} {1 - v:.2f}" for b, v in zip(change["blocks"], change["cka"])))
    return 0


def _train_on_runner(name: str, config, store, progress, cancel):
    """The same run submitted to a runner (a worker process, a Ray cluster), its events read back as they come:
    the output is what training here prints."""
    from tl_core.engine.training import RunResult
    from tl_core.events import Cancelled, EpochMetrics, RunFinished, RunStarted
    from tl_core.runs.runners import RunRequest, make_runner

    result = RunResult("", "failed", config.to_dict(), [])

    def collect(event) -> None:
        progress(event)
        if isinstance(event, RunStarted):
            result.run_id, result.classes, result.config = event.run_id, list(event.classes), event.config
        elif isinstance(event, EpochMetrics):
            result.history.append(event.row())
        elif isinstance(event, RunFinished):
            result.status, result.summary, result.error = event.status, event.summary, event.error

    runner = make_runner(name, store, 1, **({"warm": False} if name == "local" else {}))
    try:
        runner.run(RunRequest("cli", "cli", config), collect, cancel)
    except Cancelled:
        result.status = "cancelled"
    finally:
        runner.shutdown()
    if result.status == "failed":
        raise UserError(result.error or "the run failed")
    return result


def cmd_sweep(args) -> int:
    """Run a grid of controlled runs over seeds and print the cells, the gaps and the transfer-gap sentence."""
    from tl_core.engine.training import train
    from tl_core.errors import ConfigError
    from tl_core.presentation.report import gap_sentence
    from tl_core.runs import comparison
    from tl_core.runs.sweep import parse_int_list, sweep_configs

    try:
        depths, labels = parse_int_list(args.depths), parse_int_list(args.labels_per_class_list)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    configs = sweep_configs(config_from_args(args), modes=modes, depths=depths, labels_per_class=labels,
                            seeds=args.seeds)
    store = open_store(args)
    results = []
    with ctrl_c_cancels() as cancel:
        for i, config in enumerate(configs, 1):
            print(f"[{i}/{len(configs)}] {config.mode} k={config.freeze_depth} n/class={config.labels_per_class} "
                  f"seed={config.seed}", file=sys.stderr)
            result = train(config, callbacks=[ProgressBar(True)], cancel=cancel, store=store, owner="cli")
            if result.status == "cancelled":
                print("cancelled", file=sys.stderr)
                return 130
            results.append(result)
    runs = [store.get_run(r.run_id) for r in results]
    cells = comparison.cells(runs)
    out = {"cells": [c.to_dict() for c in cells], "gaps": [g.to_dict() for g in comparison.gaps(cells)],
           "sentence": gap_sentence(runs),
           "runs": [{"run_id": r["run_id"], "mode": r["config"]["mode"], "freeze_depth": r["summary"]["freeze_depth"],
                     "labels_per_class": r["config"]["labels_per_class"], "seed": r["config"]["seed"],
                     "test_acc": r["summary"]["test_acc"], "best_val_acc": r["summary"]["best_val_acc"],
                     "health": r["summary"]["health"], "wall_s": r["summary"]["wall_s"]} for r in runs]}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{'mode':9} {'k':>3} {'n/class':>7} {'seeds':>5} {'test acc':>15}  health")
    for c in cells:
        spread = f"{c.mean:.3f} \u00b1 {c.std:.3f}" if c.n > 1 else f"{c.mean:.3f}"
        health = "ok" if not c.unhealthy_runs else f"{c.unhealthy_runs} unhealthy"
        print(f"{c.mode:9} {c.depth!s:>3} {c.labels_per_class!s:>7} {c.n:>5} {spread:>15}  {health}")
    for g in out["gaps"]:
        ci = g["gap_ci95"]
        interval = f" (95% interval {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f})" if ci else ""
        print(f"gap {g['pretrained_mode']:8} - scratch at {g['labels_per_class']} labels/class: "
              f"{100 * g['gap_mean']:+.1f} points{interval}")
    print(out["sentence"])
    return 0
