"""`embed` and `mistakes`: what a stored run learned (its feature space before and after) and where it fails."""

from __future__ import annotations

import argparse
import json

from tl_core.cli.common import fail, open_store


def add_inspect_commands(sub) -> None:
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


def cmd_embed(args) -> int:
    """What the model learned: the split's features before and after training, mapped to 2-D, and how well each
    space separates the classes (k-NN accuracy, silhouette)."""
    from tl_core.presentation.inspect_report import read_separation, space_titles
    from tl_core.runs import inspection

    store = open_store(args)
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

    if (args.true is None) != (args.predicted is None):
        return fail("--true and --predicted go together: they name one cell of the confusion matrix")
    if args.limit < 0:
        return fail("--limit must be 0 (all) or more")
    store = open_store(args)
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
