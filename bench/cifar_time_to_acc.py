"""Time to accuracy of the fast residual network (ResNet-9 / airbench style) on real CIFAR-10.

    python bench/cifar_time_to_acc.py [--epochs 13] [--widths 48,192,192] [--target 0.90]
    python bench/cifar_time_to_acc.py --widths 64,256,256 --epochs 10 --target 0.94   # full width, on a GPU

Trains with cnnlab's own ``train()`` on all 50,000 training images, evaluating the 10,000 test images
after every epoch, and prints test accuracy against wall time (training plus those evaluations), the
first time the target was reached, the device and the precision.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import _common

from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=13)
    p.add_argument("--widths", default="48,192,192")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--precision", default="auto")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    _common.header(f"cifar_time_to_acc: residual_fast widths={args.widths}, {args.epochs} epochs, target {args.target:.0%}")
    with tempfile.TemporaryDirectory() as runs:
        cfg = CifarConfig(arch="residual_fast", model={"widths": [int(w) for w in args.widths.split(",")]},
                          data_dir=str(_common.shared_data("cifar10-jpg.tar.gz")), epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, weight_decay=5e-4, label_smoothing=0.2,
                          warmup=0.2, flip_tta=True, eval_batch_size=2000, precision=args.precision,
                          progress=args.progress, logger="none", runs_dir=runs, name="time-to-acc")
        run_dir = cifar.train(cfg)
        with (run_dir / "metrics.csv").open() as f:
            rows = list(csv.DictReader(f))
        summary = json.loads((run_dir / "summary.json").read_text())
    print(f"# device: {summary['device']} | precision: {summary['hyperparameters']['precision']} | "
          f"params: {summary['params']:,} | batch {args.batch_size}, lr {args.lr}, SGD-Nesterov, one-cycle, "
          f"label smoothing 0.2, flip TTA")
    print(f"{'epoch':>5} {'wall s':>8} {'test acc %':>10}")
    reached = None
    for r in rows:
        acc, t = float(r["test_acc"]), float(r["elapsed_s"])
        print(f"{r['epoch']:>5} {t:>8.0f} {100 * acc:>10.2f}")
        if reached is None and acc >= args.target:
            reached = (int(r["epoch"]), t)
    final = f"best checkpoint: test {100 * summary['test_acc']:.2f}%, train {100 * summary['train_acc']:.2f}%"
    if reached:
        print(f"reached {args.target:.0%} test accuracy at epoch {reached[0]} after {reached[1]:.0f} s "
              f"({reached[1] / 60:.1f} min); {final}")
    else:
        print(f"did not reach {args.target:.0%} in {args.epochs} epochs; {final}")


if __name__ == "__main__":
    main()
