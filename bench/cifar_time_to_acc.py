"""Time to accuracy of the fast residual network (airbench94 layout with skip connections) on real CIFAR-10.

    python bench/cifar_time_to_acc.py [--epochs 18] [--target 0.90] [--seeds 0,1,2] [--set YAML]
    python bench/cifar_time_to_acc.py --target 0.94 --seeds 0,1,2,3,4   # on a GPU: time to 94%

The recipe is the ``residual_fast`` entry of the ``full`` CIFAR preset (one place for it), run
with cnnlab's own ``train()`` on all 50,000 training images, evaluating the 10,000 test images (with
flip test-time augmentation) after every epoch. It prints test accuracy against two clocks: ``wall s``
counts everything since training started, those evaluations included; ``train s`` leaves them out.
The target counts as met on the wall clock. With several seeds it ends with the median epochs and
minutes to the target, the mean final accuracy, and the share of wall time spent evaluating.

That entry is airbench94's recipe (Keller Jordan, 2024) in cnnlab's terms: its learning rate 11.5 and
weight decay 0.0153 per 1024 examples on a summed loss become lr 1.5 and weight decay 1.33e-3 on
the mean loss at batch 1024 with momentum 0.85; biases and BatchNorm shifts take 64x the learning rate;
BatchNorm scales stay at 1; a frozen patch-whitening stem; lookahead averaging; label smoothing 0.2;
2-pixel random crops and flips.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile

import _common
import yaml

from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig
from cnnlab.experiments.common import read_compare_config


def recipe(args: argparse.Namespace, seed: int, runs_dir: str) -> CifarConfig:
    defaults, entries = read_compare_config("cifar", "full")
    entry = next(e for e in entries if e["name"] == "residual_fast")
    overrides = {"data_dir": str(_common.shared_data("cifar10-jpg.tar.gz")), "runs_dir": runs_dir,
                 "progress": args.progress, "logger": "none", **yaml.safe_load(args.set or "{}")}
    if args.epochs:
        overrides["epochs"] = args.epochs
    return cifar.entry_config(defaults, entry, seed, overrides)


def one_run(args: argparse.Namespace, seed: int) -> dict:
    """Train the recipe once; print its curve; return what the median needs."""
    with tempfile.TemporaryDirectory() as runs:
        cfg = recipe(args, seed, runs)
        run_dir = cifar.train(cfg)
        with (run_dir / "metrics.csv").open() as f:
            rows = [r for r in csv.DictReader(f) if r.get("test_acc")]
        summary = json.loads((run_dir / "summary.json").read_text())
    print(f"## seed {seed} | device: {summary['device']} | precision: {summary['hyperparameters']['precision']} | "
          f"params: {summary['params']:,} | batch {cfg.optim.batch_size}, lr {cfg.optim.lr}, wd {cfg.optim.weight_decay}, "
          f"SGD momentum {cfg.optim.momentum}, {cfg.optim.schedule}, lookahead {cfg.optim.lookahead}, "
          f"label smoothing {cfg.optim.label_smoothing}, flip TTA {cfg.flip_tta}")
    print(f"{'epoch':>5} {'wall s':>8} {'train s':>8} {'test acc %':>10}")
    reached = None
    for r in rows:
        acc, wall = float(r["test_acc"]), float(r["elapsed_s"])
        train_s = wall - float(r["eval_s"])
        print(f"{r['epoch']:>5} {wall:>8.1f} {train_s:>8.1f} {100 * acc:>10.2f}")
        if reached is None and acc >= args.target:
            reached = (int(r["epoch"]), wall, train_s)
    last = rows[-1]
    eval_share = float(last["eval_s"]) / float(last["elapsed_s"])
    final = (f"best checkpoint: test {100 * summary['test_acc']:.2f}%, train {100 * summary['train_acc']:.2f}%; "
             f"evaluation {100 * eval_share:.1f}% of the wall time")
    if reached:
        print(f"reached {args.target:.0%} test accuracy at epoch {reached[0]} after {reached[1]:.1f} s wall "
              f"({reached[1] / 60:.2f} min; {reached[2]:.1f} s without the evaluations); {final}", flush=True)
    else:
        print(f"did not reach {args.target:.0%} in {cfg.optim.epochs} epochs; {final}", flush=True)
    return {"reached": reached, "final": float(rows[-1]["test_acc"]), "eval_share": eval_share}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=0, help="default: the entry's (18)")
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each (the median needs 3)")
    p.add_argument("--set", metavar="YAML", help="keys of the recipe to change, as YAML, e.g. "
                                                "'{model.widths: [32, 128, 128], precision: 32-true}'")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    _common.header(f"cifar_time_to_acc: residual_fast, target {args.target:.0%}, seeds {seeds}, recipe from the "
                   f"full cifar preset; CPU: {_common.cpu_model()}")
    runs = [one_run(args, seed) for seed in seeds]
    hit = [r["reached"] for r in runs if r["reached"]]
    print(f"\n# {len(hit)} of {len(runs)} runs reached {args.target:.0%}; mean final test accuracy "
          f"{100 * statistics.mean(r['final'] for r in runs):.2f}%; evaluation "
          f"{100 * statistics.median(r['eval_share'] for r in runs):.1f}% of the wall time (median)")
    if len(hit) == len(runs):  # a median of times to the target needs every run to have one
        print(f"# median: epoch {statistics.median(h[0] for h in hit):g}, {statistics.median(h[1] for h in hit):.1f} s "
              f"wall ({statistics.median(h[1] for h in hit) / 60:.2f} min), "
              f"{statistics.median(h[2] for h in hit):.1f} s without the evaluations")


if __name__ == "__main__":
    main()
