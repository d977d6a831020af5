"""Time to accuracy of the fast residual network (airbench94 layout with skip connections) on real CIFAR-10.

    python bench/cifar_time_to_acc.py [--epochs 18] [--widths 64,256,256] [--target 0.90]
    python bench/cifar_time_to_acc.py --epochs 10 --target 0.94      # on a GPU: time to 94%

Trains with cnnlab's own ``train()`` on all 50,000 training images, evaluating the 10,000 test images
(with flip test-time augmentation) after every epoch, and prints test accuracy against wall time. Two
clocks: ``wall s`` counts everything since training started, those evaluations included; ``train s``
leaves the evaluations out. The target counts as met on the wall clock.

The recipe is airbench94's (Keller Jordan, 2024) in cnnlab's terms: its learning rate 11.5 and
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

from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig


def recipe(args: argparse.Namespace, runs_dir: str) -> CifarConfig:
    return CifarConfig(
        arch="residual_fast", model={"widths": [int(w) for w in args.widths.split(",")]},
        data_dir=str(_common.shared_data("cifar10-jpg.tar.gz")), epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, momentum=0.85, weight_decay=args.weight_decay, norm_lr_scale=64, warmup=0.23,
        label_smoothing=0.2, lookahead=True, crop_padding=2, flip=True, flip_tta=True, eval_batch_size=2000,
        precision=args.precision, progress=args.progress, logger="none", runs_dir=runs_dir, name="time-to-acc",
        seed=args.seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=18)
    p.add_argument("--widths", default="64,256,256")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1.5)
    p.add_argument("--weight-decay", type=float, default=1.33e-3)
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    _common.header(f"cifar_time_to_acc: residual_fast widths={args.widths}, {args.epochs} epochs, target {args.target:.0%}")
    with tempfile.TemporaryDirectory() as runs:
        run_dir = cifar.train(recipe(args, runs))
        with (run_dir / "metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        summary = json.loads((run_dir / "summary.json").read_text())
    print(f"# device: {summary['device']} | precision: {summary['hyperparameters']['precision']} | "
          f"params: {summary['params']:,} | batch {args.batch_size}, lr {args.lr}, wd {args.weight_decay}, "
          f"SGD-Nesterov 0.85, one-cycle, lookahead, label smoothing 0.2, flip TTA, seed {args.seed}")
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
        print(f"did not reach {args.target:.0%} in {args.epochs} epochs; {final}")


if __name__ == "__main__":
    main()
