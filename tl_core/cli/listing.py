"""`backbones`, `datasets` and `runs`: what this machine can train on, and what it has trained."""

from __future__ import annotations

import json

from tl_core.cli.common import open_store
from tl_core.engine.plan import depth_label_of
from tl_core.records import RunSummary


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


def cmd_runs(args) -> int:
    store = open_store(args)
    runs = store.list_runs(dataset=args.data, with_history=args.json)
    if args.json:
        print(json.dumps(runs, default=RunSummary.to_dict))
        return 0
    for r in runs:
        c, s = r["config"], r["summary"]
        acc = f"{s['test_acc']:.3f}" if s.get("test_acc") is not None else "-"
        flag = "  UNHEALTHY" if s.get("health") else ""
        print(f"{r['run_id']}  {r['status']:9} {c['data']:18} {c['backbone']:20} {c['mode']:8} "
              f"{depth_label_of(r) or '-':18} n/class={c.get('labels_per_class')!s:5} "
              f"seed={c.get('seed', 0)!s:3} test={acc}{flag}")
    return 0
