"""`python -m tl_core`: the contract other tools and checks rely on.

Bad input exits 2 with one line on stderr that says what is wrong and what to
do; Ctrl-C cancels the run (recorded as cancelled) and exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from tl_core.config import IMAGE_SHIFTS, RECIPES
from tl_core.errors import UserError
from tl_core.records import RunSummary

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")



def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_backbones(args) -> int:
    from tl_core.models.backbones import list_backbones
    from tl_core.presentation.formatting import format_params

    rows = list_backbones()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':26} {'family':7} {'weights':9} {'params':>8} blocks")
    for r in rows:
        print(f"{r['name']:26} {r['family']:7} {r['weights']:9} {format_params(r['params']):>8} "
              f"{len(r['blocks'])}: {', '.join(r['blocks'][:4])}{', ...' if len(r['blocks']) > 4 else ''}")
    return 0


def cmd_datasets(args) -> int:
    from tl_core.inputs.data import list_builtins

    rows = list_builtins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:20} {r['kind']:6} {len(r['classes']):3} classes {r['n_items']:6} items  {r['description']}")
    return 0


class _ProgressBar:
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
                           f"val loss {event.val_loss:.3f} acc {event.val_acc:.3f}  ({event.seconds:.1f}s)", file=sys.stderr)
        elif kind == "message":
            (self.bar.write if self.bar else print)(event.text, file=sys.stderr)
        elif kind == "run_finished" and self.bar is not None:
            self.bar.close()


def _config_from_args(args):
    from tl_core.config import TrainConfig

    mode = args.mode or (RECIPES[args.recipe] if args.recipe else "frozen")  # a recipe implies its mode
    return TrainConfig(data=args.data, backbone=args.backbone, mode=mode, freeze_depth=args.freeze_depth,
                       lp_ft=args.lp_ft, recipe=args.recipe, surgical_block=args.surgical_block, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                       image_size=args.image_size,
                       labels_per_class=args.labels_per_class, val_per_class=args.val_per_class,
                       test_per_class=args.test_per_class, budget=args.budget, ood_shift=args.ood_shift,
                       augment=args.augment,
                       seed=args.seed, device=args.device, threads=args.threads, pretrained=not args.random_init, max_length=args.max_length,
                       text_column=args.text_column, label_column=args.label_column)


def cmd_train(args) -> int:
    from tl_core.events import CancelToken
    from tl_core.runs.store import RunStore
    from tl_core.engine.training import train

    config = _config_from_args(args)
    if config.mode != "finetune" and args.freeze_depth not in (None, 0):
        return _fail(f"--freeze-depth only applies to --mode finetune (got --mode {config.mode})")
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        store = RunStore(args.store) if args.store else RunStore()
        if args.runner == "here":
            result = train(config, callbacks=[_ProgressBar(args.quiet)], cancel=cancel, store=store, owner="cli")
        else:
            result = _train_on_runner(args.runner, config, store, _ProgressBar(args.quiet), cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.status == "cancelled":
        print(f"cancelled: run {result.run_id} recorded as cancelled", file=sys.stderr)
        return 130
    s = result.summary
    out = {"run_id": result.run_id, "backbone": config.backbone, "mode": config.mode, "recipe": config.recipe,
           "store": str(store.path),
           "classes": result.classes, "history": result.history,
           **{k: s.get(k) for k in SUMMARY_KEYS}}
    if args.json:
        print(json.dumps(out))
        return 0
    recipe = f" ({config.recipe})" if config.recipe else ""
    print(f"run {result.run_id}{recipe}: test acc {out['test_acc']:.3f} at epoch {out['selected_epoch']} (chosen on validation: "
          f"{out['best_val_acc']:.3f}), {out['ood_shift']} shift {out['ood_acc']:.3f}, {out['wall_s']:.1f}s on "
          f"{out['device']} (stored in {store.path})")
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


#: What `train --json` reports of a run's summary (see tl_core.engine.training.fit).
SUMMARY_KEYS = ("freeze_depth", "trainable_params", "total_params", "test_acc", "selected_epoch", "best_val_acc",
                "final_val_acc", "ood_acc", "ood_shift", "health", "budget", "epochs_run", "head_solver", "lr",
                "confusion_matrix", "per_class", "device", "threads", "deterministic", "wall_s", "n_train", "n_val", "n_test", "image_size",
                "cached_boundary", "block_similarity", "lp_ft_probe_val_acc")


def cmd_runs(args) -> int:
    from tl_core.runs.store import RunStore

    store = RunStore(args.store) if args.store else RunStore()
    runs = store.list_runs(dataset=args.data, with_history=args.json)
    if args.json:
        print(json.dumps(runs, default=RunSummary.to_dict))
        return 0
    for r in runs:
        c, s = r["config"], r["summary"]
        acc = f"{s['test_acc']:.3f}" if s.get("test_acc") is not None else "-"
        flag = "  UNHEALTHY" if s.get("health") else ""
        print(f"{r['run_id']}  {r['status']:9} {c['data']:18} {c['backbone']:20} {c['mode']:8} "
              f"k={s.get('freeze_depth', c.get('freeze_depth'))!s:4} n/class={c.get('labels_per_class')!s:5} "
              f"seed={c.get('seed', 0)!s:3} test={acc}{flag}")
    return 0


def cmd_sweep(args) -> int:
    """Run a grid of controlled runs over seeds and print the cells, the gaps and the transfer-gap sentence."""
    from tl_core.runs import comparison
    from tl_core.events import CancelToken
    from tl_core.presentation.report import gap_sentence
    from tl_core.runs.store import RunStore
    from tl_core.runs.sweep import parse_int_list, sweep_configs
    from tl_core.engine.training import ConfigError, train

    try:
        depths, labels = parse_int_list(args.depths), parse_int_list(args.labels_per_class_list)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    configs = sweep_configs(_config_from_args(args), modes=modes, depths=depths, labels_per_class=labels,
                            seeds=args.seeds)
    store = RunStore(args.store) if args.store else RunStore()
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    results = []
    try:
        for i, config in enumerate(configs, 1):
            print(f"[{i}/{len(configs)}] {config.mode} k={config.freeze_depth} n/class={config.labels_per_class} "
                  f"seed={config.seed}", file=sys.stderr)
            result = train(config, callbacks=[_ProgressBar(True)], cancel=cancel, store=store, owner="cli")
            if result.status == "cancelled":
                print("cancelled", file=sys.stderr)
                return 130
            results.append(result)
    finally:
        signal.signal(signal.SIGINT, previous)
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
        print(f"{c.mode:9} {c.freeze_depth!s:>3} {c.labels_per_class!s:>7} {c.n:>5} {spread:>15}  {health}")
    for g in out["gaps"]:
        ci = g["gap_ci95"]
        interval = f" (95% interval {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f})" if ci else ""
        print(f"gap {g['pretrained_mode']:8} - scratch at {g['labels_per_class']} labels/class: "
              f"{100 * g['gap_mean']:+.1f} points{interval}")
    print(out["sentence"])
    return 0


class _RankProgress:
    """The CLI's consumer of a ranking's events: a bar over each backbone's items, one line per score."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __call__(self, event) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        if event.kind == "score_progress":
            if self.bar is None:
                self.bar = tqdm(total=event.items, file=sys.stderr, unit="item", leave=False,
                                desc=f"[{event.index}/{event.total}] {_init_label(event.backbone, event.pretrained)}")
            self.bar.update(event.done - self.bar.n)
        elif event.kind == "backbone_scored":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            print(f"[{event.index}/{event.total}] {_init_label(event.name, event.pretrained)}: LogME "
                  f"{event.logme:.3f}, H-score {event.hscore:.2f} ({event.seconds:.1f}s)", file=sys.stderr)


def _init_label(name: str, pretrained: bool) -> str:
    return name if pretrained else f"{name} (random init)"


def cmd_rank(args) -> int:
    """Score every backbone whose weights are here on the chosen data; check the order against stored runs."""
    from tl_core.engine.ranking import rank_backbones
    from tl_core.events import CancelToken
    from tl_core.runs.rank_agreement import agreement
    from tl_core.runs.store import RunStore

    config = _data_config(args)
    names = [n.strip() for n in args.backbones.split(",") if n.strip()] if args.backbones else None
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        ranking = rank_backbones(config, names=names, include_random=args.include_random,
                                 max_per_class=args.max_per_class, callbacks=[_RankProgress(args.quiet)],
                                 cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    if ranking.status == "cancelled":
        print(f"cancelled after scoring {len(ranking.scores)} backbone(s)", file=sys.stderr)
        return 130
    store = RunStore(args.store) if args.store else RunStore()
    check = agreement(ranking, store.list_runs(dataset=config.data, with_history=False))
    out = {**ranking.to_dict(), "agreement": check}
    if args.json:
        print(json.dumps(out))
        return 0
    measured = {(m["name"], m["pretrained"]): m for m in check["backbones"]}
    print(f"{ranking.data}: {ranking.items} training items scored per backbone; higher ranks higher "
          f"(only comparable on the same data)")
    print(f"{'#':>2} {'backbone':34} {'LogME':>8} {'H-score':>8} {'seconds':>7} {check['mode'] or 'measured':>9}")
    for i, s in enumerate(ranking.scores, 1):
        acc = measured[(s.name, s.pretrained)]["accuracy"]
        print(f"{i:>2} {_init_label(s.name, s.pretrained):34} {s.logme:8.3f} {s.hscore:8.2f} {s.seconds:7.1f} "
              f"{'-' if acc is None else f'{acc:.3f}':>9}")
    tau = check["logme"]["kendall_tau"]
    if tau is None:
        print(f"Kendall's tau needs test accuracies of at least 3 of these backbones on the same settings "
              f"(train them with --mode frozen); {check['n']} have one.")
    else:
        h = check["hscore"]["kendall_tau"]
        print(f"Kendall's tau, LogME vs {check['mode']} test accuracy over {check['n']} backbones: {tau:+.2f}"
              + (f" (H-score: {h:+.2f})" if h is not None else ""))
    if ranking.skipped:
        print(f"not scored (weights not on this machine): {', '.join(ranking.skipped)}")
    return 0


def _data_config(args):
    """A TrainConfig holding only what `rank` reads: the data, the split and the input size."""
    from tl_core.config import TrainConfig

    return TrainConfig(data=args.data, image_size=args.image_size, labels_per_class=args.labels_per_class,
                       val_per_class=args.val_per_class, test_per_class=args.test_per_class, seed=args.seed,
                       device=args.device, max_length=args.max_length, text_column=args.text_column,
                       label_column=args.label_column)


def cmd_embed(args) -> int:
    """What the model learned: the split's features before and after training, mapped to 2-D, and how well each
    space separates the classes (k-NN accuracy, silhouette)."""
    from tl_core.presentation.inspect_report import read_separation, space_titles
    from tl_core.runs import inspection
    from tl_core.runs.store import RunStore

    store = RunStore(args.store) if args.store else RunStore()
    items = inspection.open_run(store, args.run, split=args.split, data_path=args.data)
    result = inspection.embeddings(items, seed=args.seed)
    out = result.to_dict(result.maps(args.method, seed=args.seed))
    reading = read_separation(out)
    out["reading"] = reading.text
    if args.json:
        print(json.dumps(out))
        return 0
    names = space_titles(result.mode, result.pretrained_start)
    print(f"run {result.run_id} ({items.config.backbone}, {result.mode}): {out['n_items']} "
          f"{inspection.SPLITS[result.split]} items, {out['method']} map")
    for name, sep in zip(names, (out["before"], out["after"])):
        acc = "-" if sep["knn_acc"] is None else f"{100 * sep['knn_acc']:.1f} ± {100 * sep['knn_std']:.1f}%"
        sil = "-" if sep["silhouette"] is None else f"{sep['silhouette']:.3f}"
        print(f"  {name:42} k-NN accuracy {acc:>14}   silhouette {sil}")
    print(reading.text)
    return 0


def cmd_mistakes(args) -> int:
    """Where it fails: every item's probabilities on a split; the most confident mistakes, or one confusion cell."""
    from tl_core.presentation.inspect_report import item_caption
    from tl_core.runs import inspection
    from tl_core.runs.store import RunStore

    if (args.true is None) != (args.predicted is None):
        return _fail("--true and --predicted go together: they name one cell of the confusion matrix")
    if args.limit < 0:
        return _fail("--limit must be 0 (all) or more")
    store = RunStore(args.store) if args.store else RunStore()
    result = inspection.predictions(inspection.open_run(store, args.run, split=args.split, data_path=args.data))
    limit = args.limit or None
    if args.true is not None:
        positions = result.cell(args.true, args.predicted)[:limit]
    else:
        positions = result.mistakes(limit)
    out = {"run_id": result.run_id, "split": result.split, "classes": result.classes, "n_items": len(result.labels),
           "accuracy": result.accuracy, "confusion_matrix": result.confusion_matrix(),
           "n_mistakes": int(len(result.mistakes())), "health": result.health,
           "cell": None if args.true is None else {"true": result.classes[result.class_index(args.true)],
                                                   "predicted": result.classes[result.class_index(args.predicted)]},
           "items": [result.row(int(p), top=len(result.classes)) for p in positions]}
    if args.json:
        print(json.dumps(out))
        return 0
    what = (f"true {out['cell']['true']}, predicted {out['cell']['predicted']}" if out["cell"]
            else "most confident mistakes first")
    print(f"run {result.run_id}: {100 * out['accuracy']:.1f}% of {out['n_items']} {inspection.SPLITS[result.split]} "
          f"items correct, {out['n_mistakes']} mistakes; {what}:")
    for row in out["items"]:
        label = row.get("text") or f"item {row['index']}"
        print(f"  {label[:60]:60}  {item_caption(row, top=3)}")
    return 0


def _add_inspect_commands(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run", required=True, metavar="RUN_ID", help="a completed run (see `python -m tl_core runs`)")
    common.add_argument("--data", help="the file or folder the run trained on, when it was an app upload")
    common.add_argument("--store", help="run store path (default: $TL_DATA_DIR or ~/.local/share/transfer-lab)")
    common.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    e = sub.add_parser("embed", parents=[common], help="features before vs after training: 2-D map and class "
                                                       "separation (k-NN accuracy, silhouette)")
    e.add_argument("--method", choices=["pca", "tsne"], default="pca")
    e.add_argument("--split", choices=["val", "test"], default="val")
    e.add_argument("--seed", type=int, default=0, help="the k-NN folds and the t-SNE layout")
    e.set_defaults(func=cmd_embed)
    m = sub.add_parser("mistakes", parents=[common], help="per-item probabilities: the most confident mistakes, or "
                                                          "the items of one confusion-matrix cell")
    m.add_argument("--split", choices=["val", "test"], default="test")
    m.add_argument("--limit", type=int, default=20, help="items to list (0 = all)")
    m.add_argument("--true", metavar="CLASS", help="with --predicted: the items of one confusion-matrix cell")
    m.add_argument("--predicted", metavar="CLASS")
    m.set_defaults(func=cmd_mistakes)


def _add_data_options(t: argparse.ArgumentParser) -> None:
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


def _add_train_options(t: argparse.ArgumentParser) -> None:
    _add_data_options(t)
    t.add_argument("--backbone", required=True)
    t.add_argument("--mode", choices=["frozen", "finetune", "scratch"], default=None,
                   help="default: the mode --recipe implies, else frozen")
    t.add_argument("--freeze-depth", type=int, default=None, help="finetune: freeze the first K blocks (0 = train all)")
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
    _add_train_options(t)
    t.add_argument("--runner", choices=["here", "local", "ray"], default="here",
                   help="where it trains: in this process (default), a worker process, or a Ray cluster "
                        "($TL_RAY_ADDRESS; `make setup-ray`)")
    t.set_defaults(func=cmd_train)
    w = sub.add_parser("sweep", help="a grid of controlled runs: modes x freeze depths x labels per class")
    _add_train_options(w)
    w.add_argument("--modes", default="frozen,finetune,scratch")
    w.add_argument("--depths", help="fine-tune freeze depths, e.g. 0,3,5,7")
    w.add_argument("--labels-per-class-list", help="e.g. 5,10,25,50 (overrides --labels-per-class)")
    w.add_argument("--seeds", type=int, default=1, help="seeds per cell (--seed, --seed+1, ...): split and init change")
    w.set_defaults(func=cmd_sweep)
    k = sub.add_parser("rank", help="score every backbone with weights here on the data (LogME, H-score), "
                                    "before training")
    _add_data_options(k)
    k.add_argument("--include-random", action="store_true",
                   help="also score random-init copies of the vision backbones (they should rank below)")
    k.add_argument("--backbones", help="comma-separated names (default: every backbone whose weights are here)")
    k.add_argument("--max-per-class", type=int, default=100,
                   help="training items per class to score (the first ones a run with that many labels trains on); "
                        "0 = all")
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
    _add_inspect_commands(sub)  # embed, mistakes
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with a usage line on bad flags
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except UserError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{err.strerror or err}: {err.filename or ''}".strip(": "))


if __name__ == "__main__":
    sys.exit(main())
