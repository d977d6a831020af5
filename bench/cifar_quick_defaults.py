"""The quick run people try first: 2 epochs on 2,000 real CIFAR-10 images, every architecture, both
precisions, the default recipe against the previous one (SGD 0.05, weight decay 5e-4, 4-px crops,
batch 64),
side by side in one run. Test accuracy on a fixed, class-balanced 1,000-image subset.

    python bench/cifar_quick_defaults.py [--seeds 1] [--archs a,b] [--precisions 32-true,bf16-mixed]

Prints one row per (architecture, precision) with each recipe's test accuracy and its 95% Wilson
interval, and the smallest accuracy of each recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import _common

from cnnlab.config import build
from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig
from cnnlab.stats import wilson_interval
from cnnlab.models import list_models

PREVIOUS = {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4, "crop_padding": 4, "batch_size": 64}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--archs", default=",".join(list_models()))
    ap.add_argument("--precisions", default="32-true,bf16-mixed")
    args = ap.parse_args()
    os.environ["CNNLAB_RUNS"] = tempfile.mkdtemp(prefix="cnnlab-bench-")
    data = _common.shared_data("cifar10-jpg.tar.gz")
    _common.header("2 epochs x 2,000 real CIFAR-10 images, test on 1,000: default recipe vs previous")
    print(f"{'arch':<14} {'precision':<11} {'default %':>10} {'95% CI':>13} {'previous %':>11} {'95% CI':>13}")
    worst = {"default": 1.0, "previous": 1.0}
    for precision in args.precisions.split(","):
        for arch in args.archs.split(","):
            for seed in range(args.seeds):
                cells = []
                for recipe, changes in (("default", {}), ("previous", PREVIOUS)):
                    cfg = build(CifarConfig, arch=arch, data_dir=str(data), epochs=2, limit_train=2000, limit_test=1000,
                                      precision=precision, seed=seed, progress=False, logger="none", **changes)
                    s = json.loads((cifar.train(cfg) / "summary.json").read_text())
                    low, high = wilson_interval(s["test_acc"], s["test_images"])
                    worst[recipe] = min(worst[recipe], s["test_acc"])
                    cells.append(f"{100 * s['test_acc']:>10.1f} {f'[{100 * low:.1f}, {100 * high:.1f}]':>13}")
                print(f"{arch:<14} {precision:<11} {cells[0]} {' ' + cells[1]}", flush=True)
    print(f"lowest: default {100 * worst['default']:.1f}%, previous {100 * worst['previous']:.1f}% "
          f"(the test asserts >= 35% for the default)")


if __name__ == "__main__":
    main()
