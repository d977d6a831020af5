"""Time to accuracy of the fast residual network (airbench94 layout with skip connections) on real CIFAR-10.

    python bench/cifar_time_to_acc.py [--epochs 18] [--target 0.90] [--set KEY=VALUE ...]
    python bench/cifar_time_to_acc.py --epochs 10 --target 0.94      # on a GPU: time to 94%

The recipe is the ``residual_fast`` entry of the ``full`` CIFAR preset (one place for it), run
with cnnlab's own ``train()`` on all 50,000 training images, evaluating the 10,000 test images (with
flip test-time augmentation) after every epoch. It prints test accuracy against two clocks: ``wall s``
counts everything since training started, those evaluations included; ``train s`` leaves them out.
The target counts as met on the wall clock.

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
import tempfile

import _common
import yaml

from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig
from cnnlab.experiments.common import read_compare_config


def recipe(args: argparse.Namespace, runs_dir: str) -> CifarConfig:
    defaults, entries = read_compare_config("cifar", "full")
    entry = next(e for e in entries if e["name"] == "residual_fast")
    overrides = {"data_dir": str(_common.shared_data("cifar10-jpg.tar.gz")), "runs_dir": runs_dir,
                 "progress": args.progress, "logger": "none", **yaml.safe_load(args.set or "{}")}
    if args.epochs:
        overrides["epochs"] = args.epochs
    return cifar.entry_config(defaults, entry, args.seed, overrides)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=0, help="default: the entry's (18)")
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", metavar="YAML", help="keys of the recipe to change, as YAML, e.g. "
                                                "'{model.widths: [32, 128, 128], precision: 32-true}'")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        cfg = recipe(args, runs)
        _common.header(f"cifar_time_to_acc: residual_fast {cfg.model or 'default widths'}, {cfg.optim.epochs} epochs, "
                       f"target {args.target:.0%}, recipe from the full cifar preset")
        run_dir = cifar.train(cfg)
        with (run_dir / "metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        summary = json.loads((run_dir / "summary.json").read_text())
    print(f"# device: {summary['device']} | precision: {summary['hyperparameters']['precision']} | "
          f"params: {summary['params']:,} | batch {cfg.optim.batch_size}, lr {cfg.optim.lr}, wd {cfg.optim.weight_decay}, "
          f"SGD momentum {cfg.optim.momentum}, {cfg.optim.schedule}, lookahead {cfg.optim.lookahead}, "
          f"label smoothing {cfg.optim.label_smoothing}, flip TTA {cfg.flip_tta}, seed {cfg.run.seed}")
    print(f"{'epoch':>5} {'wall s':>8} {'train s':>8} {'test acc %':>10}")
    reached = None
    for r in rows:
        acc, wall = float(r["test_acc"]), float(r["elapsed_s"])
        train_s = wall - float(r["eval_s"])
        print(f"{r['epoch']:>5} {wall:>8.0f} {train_s:>8.0f} {100 * acc:>10.2f}")
        if reached is None and acc >= args.target:
            reached = (int(r["epoch"]), wall, train_s)
    final = f"best checkpoint: test {100 * summary['test_acc']:.2f}%, train {100 * summary['train_acc']:.2f}%"
    if reached:
        print(f"reached {args.target:.0%} test accuracy at epoch {reached[0]} after {reached[1]:.0f} s wall "
              f"({reached[1] / 60:.1f} min; {reached[2]:.0f} s without the evaluations); {final}")
    else:
        print(f"did not reach {args.target:.0%} in {cfg.optim.epochs} epochs; {final}")


if __name__ == "__main__":
    main()
