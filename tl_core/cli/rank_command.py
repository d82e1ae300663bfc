"""`rank`: every backbone whose weights are here scored on the data before any training (LogME, H-score), and
the order checked against the stored runs' test accuracies."""

from __future__ import annotations

import json
import sys

from tl_core.cli.common import ctrl_c_cancels, open_store
from tl_core.cli.options import data_config


class RankProgress:
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
                                desc=f"[{event.index}/{event.total}] {init_label(event.backbone, event.pretrained)}")
            self.bar.update(event.done - self.bar.n)
        elif event.kind == "backbone_scored":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            print(f"[{event.index}/{event.total}] {init_label(event.name, event.pretrained)}: LogME "
                  f"{event.logme:.3f}, H-score {event.hscore:.2f} ({event.seconds:.1f}s)", file=sys.stderr)


def init_label(name: str, pretrained: bool) -> str:
    return name if pretrained else f"{name} (random init)"


def cmd_rank(args) -> int:
    """Score every backbone whose weights are here on the chosen data; check the order against stored runs, or with
    --check train the missing feature-extraction runs first and set ImageNet top-1 against their test accuracy."""
    from tl_core.engine.ranking import rank_backbones
    from tl_core.errors import ConfigError
    from tl_core.inputs import data
    from tl_core.runs.imagenet_transfer import imagenet_acc1, seed_list
    from tl_core.runs.rank_agreement import agreement

    if args.seeds is not None and not args.check:
        raise ConfigError("--seeds only applies with --check (it trains that many feature-extraction runs per "
                          "backbone)")
    seeds = seed_list(args.seed, 1 if args.seeds is None else args.seeds)
    config = data_config(args)
    names = [n.strip() for n in args.backbones.split(",") if n.strip()] if args.backbones else None
    with ctrl_c_cancels() as cancel:
        ds = data.load_dataset(config.data, text_column=config.text_column, label_column=config.label_column)
        ranking = rank_backbones(config, dataset=ds, names=names, include_random=args.include_random,
                                 max_per_class=args.max_per_class, callbacks=[RankProgress(args.quiet)],
                                 cancel=cancel)
        if ranking.status == "cancelled":
            print(f"cancelled after scoring {len(ranking.scores)} backbone(s)", file=sys.stderr)
            return 130
        store = open_store(args)
        if args.check:
            return _check(args, config, ds, ranking, store, seeds, cancel)
    check = agreement(ranking, store.list_runs(dataset=config.data, with_history=False))
    out = {**ranking.to_dict(), "agreement": check}
    for row in out["backbones"]:
        row["imagenet_acc1"] = imagenet_acc1(row["name"], row["pretrained"])
    if args.json:
        print(json.dumps(out))
        return 0
    measured = {(m["name"], m["pretrained"]): m for m in check["backbones"]}
    print(f"{ranking.data}: {ranking.items} training items scored per backbone; higher ranks higher "
          f"(only comparable on the same data)")
    print(f"{'#':>2} {'backbone':34} {'top-1':>6} {'LogME':>8} {'H-score':>8} {'seconds':>7} "
          f"{check['mode'] or 'measured':>9}")
    for i, (s, row) in enumerate(zip(ranking.scores, out["backbones"]), 1):
        acc = measured[(s.name, s.pretrained)]["accuracy"]
        print(f"{i:>2} {init_label(s.name, s.pretrained):34} {_num(row['imagenet_acc1'], '.1f'):>6} {s.logme:8.3f} "
              f"{s.hscore:8.2f} {s.seconds:7.1f} {_num(acc, '.3f'):>9}")
    tau = check["logme"]["kendall_tau"]
    if tau is None:
        print(f"Kendall's tau needs test accuracies of at least 3 of these backbones on the same settings "
              f"(train them with --mode frozen, or add --check); {check['n']} have one.")
    else:
        h = check["hscore"]["kendall_tau"]
        print(f"Kendall's tau, LogME vs {check['mode']} test accuracy over {check['n']} backbones: {tau:+.2f}"
              + (f" (H-score: {h:+.2f})" if h is not None else ""))
    if ranking.skipped:
        print(f"not scored (weights not on this machine): {', '.join(ranking.skipped)}")
    return 0


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _check(args, config, ds, ranking, store, seeds: list[int], cancel) -> int:
    """Train what the check still lacks (one frozen run per backbone and seed), then print the ImageNet table."""
    from tl_core.cli.training_commands import ProgressBar
    from tl_core.engine.training import train
    from tl_core.presentation.imagenet_chart import conclusion, stats_line
    from tl_core.runs.imagenet_transfer import missing, transfer_table

    records = store.list_runs(dataset=config.data, with_history=False)
    todo = missing(ranking, config, records, len(seeds))
    for i, run in enumerate(todo, 1):
        if not args.quiet:
            print(f"[{i}/{len(todo)}] feature extraction: {init_label(run.backbone, run.pretrained)}, seed {run.seed}",
                  file=sys.stderr)
        result = train(run, dataset=ds, callbacks=[ProgressBar(True)], cancel=cancel, store=store, owner="cli")
        if result.status == "cancelled":
            print(f"cancelled: {i - 1} of {len(todo)} runs trained, run {result.run_id} recorded as cancelled",
                  file=sys.stderr)
            return 130
    table = transfer_table(ranking, store.list_runs(dataset=config.data, with_history=False), seeds=seeds)
    out = {**table.to_dict(), "sentence": conclusion(table), "trained": len(todo),
           "reused": len(ranking.scores) * len(seeds) - len(todo), "items": ranking.items,
           "per_class": ranking.per_class, "skipped": ranking.skipped, "store": str(store.path)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{ranking.data}: feature extraction, seeds {seeds[0]}–{seeds[-1]} ({out['trained']} runs trained, "
          f"{out['reused']} reused from {store.path})")
    print(f"{'backbone':34} {'top-1':>6} {'LogME':>8} {'H-score':>8} {'frozen test acc':>16} {'n':>3}")
    for r in table.rows:
        acc = "-" if r.frozen.mean is None else f"{r.frozen.mean:.3f}" + (
            f" ± {r.frozen.std:.3f}" if r.frozen.std is not None else "")
        print(f"{init_label(r.name, r.pretrained):34} {_num(r.imagenet_acc1, '.1f'):>6} {r.logme:8.3f} "
              f"{r.hscore:8.2f} {acc:>16} {r.frozen.n:>3}" + (f" ({r.frozen.unhealthy} unhealthy, left out)"
                                                               if r.frozen.unhealthy else ""))
    print(stats_line(table).replace("τ", "tau"))
    print(out["sentence"])
    return 0
