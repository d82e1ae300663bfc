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
    """Score every backbone whose weights are here on the chosen data; check the order against stored runs."""
    from tl_core.engine.ranking import rank_backbones
    from tl_core.runs.rank_agreement import agreement

    config = data_config(args)
    names = [n.strip() for n in args.backbones.split(",") if n.strip()] if args.backbones else None
    with ctrl_c_cancels() as cancel:
        ranking = rank_backbones(config, names=names, include_random=args.include_random,
                                 max_per_class=args.max_per_class, callbacks=[RankProgress(args.quiet)],
                                 cancel=cancel)
    if ranking.status == "cancelled":
        print(f"cancelled after scoring {len(ranking.scores)} backbone(s)", file=sys.stderr)
        return 130
    store = open_store(args)
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
        print(f"{i:>2} {init_label(s.name, s.pretrained):34} {s.logme:8.3f} {s.hscore:8.2f} {s.seconds:7.1f} "
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
