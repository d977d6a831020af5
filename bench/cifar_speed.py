"""Training throughput of every CIFAR-10 architecture: cnnlab (Lightning) against a minimal plain
PyTorch loop on the same model, data, augmentation, batch, optimiser and precision, measured in one
run and interleaved so that machine noise hits both alike.

    python bench/cifar_speed.py [--images 2048] [--epochs 3] [--batch-size 64] [--archs a,b] [--repeats 3]
    python bench/cifar_speed.py --fast --images 8192     # the residual_fast recipe entry, as cifar_time_to_acc trains it

Prints images/s of each (the median of ``--repeats`` interleaved repeats, each the mean of the timed
epochs) and the ratio cnnlab / plain of the medians (target >= 0.95), with each repeat's ratio beside it.
Both sides train the same model, data, augmentation, batch, optimiser, schedule, label smoothing,
lookahead and precision; cnnlab adds what it is for (exact epoch metrics, NaN stop, the Trainer).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path, data location)
import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from cnnlab.config import build
from cnnlab.data import cifar10
from cnnlab.data.loader import class_balanced_indices
from cnnlab.data.splits import Split
from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig, build_model
from cnnlab.experiments.common import read_compare_config
from cnnlab.models import list_models
from cnnlab.train.classifier import ClassifierModule, make_optimizer, make_schedule
from cnnlab.train.engine import Length, make_trainer, quiet_lightning, resolve_precision
from cnnlab.train.lookahead import Lookahead


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, module):
        synchronize()
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        synchronize()
        self.times.append(time.perf_counter() - self.start)


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where Lightning's "auto" trains


def synchronize() -> None:
    """Wait for queued GPU work, so a clock read after it counts it (nothing to wait for on a CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def model_for(cfg: CifarConfig, x) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(cfg.arch, cfg.model)
    cifar.fit_to_data(model, cfg, Split(x, torch.zeros(len(x), dtype=torch.long)))  # whitening stems
    return model


def cnnlab_epochs(cfg: CifarConfig, x, y, tmp) -> list[float]:
    quiet_lightning()
    module = ClassifierModule(model_for(cfg, x), cfg.optim, channels_last=cfg.hardware.channels_last)
    trainer, _ = make_trainer(cfg.run, cfg.hardware, Length(cfg.optim.epochs), tmp, monitor="train_acc", mode="max",
                              has_eval=False)
    timer = EpochTimer()
    trainer.callbacks.append(timer)
    loader = cifar.train_loader(cfg, Split(x, y))
    trainer.fit(module, train_dataloaders=loader)
    return timer.times


def plain_epochs(cfg: CifarConfig, x, y) -> list[float]:
    """What a user would write by hand: the same model and data path, no framework."""
    model = model_for(cfg, x).to(DEVICE, memory_format=torch.channels_last).train()
    loader = cifar.train_loader(cfg, Split(x, y))
    optimizer = make_optimizer(model, cfg.optim)
    schedule = make_schedule(optimizer, cfg.optim, cfg.optim.epochs * len(loader))
    bf16 = resolve_precision(cfg.hardware.precision) == "bf16-mixed"
    lookahead = Lookahead() if cfg.optim.lookahead else None
    times, step = [], 0
    for _ in range(cfg.optim.epochs):
        synchronize()
        start = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(DEVICE, non_blocking=True), yb.to(DEVICE, non_blocking=True)
            with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb), yb, label_smoothing=cfg.optim.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if lookahead is not None:
                lookahead.step(model, step, cfg.optim.epochs * len(loader))
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def configs(args) -> list[CifarConfig]:
    common = {"epochs": args.epochs, "progress": False, "logger": "none"}
    if args.fast:
        defaults, entries = read_compare_config("cifar", "full")
        entry = next(e for e in entries if e["name"] == "residual_fast")
        return [cifar.entry_config(defaults, entry, 0, common)]
    return [build(CifarConfig, arch=arch, batch_size=args.batch_size, **common) for arch in args.archs.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=3, help="the first epoch is warm-up and not counted")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--archs", default=",".join(a for a in list_models()))
    p.add_argument("--fast", action="store_true", help="the residual_fast entry of the full preset, its own batch and recipe")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    _common.header("cifar_speed: training images/s, cnnlab vs plain PyTorch loop")
    data = cifar10.load(_common.shared_data("cifar10-jpg.tar.gz"))
    idx = class_balanced_indices(data.train.y, args.images)
    x, y = data.train.x[idx], data.train.y[idx]
    print(f"{'arch':<14} {'plain img/s':>12} {'cnnlab img/s':>13} {'ratio':>7}  per repeat   precision="
          f"{resolve_precision('auto')}, {args.images} images, epochs 2..{args.epochs} timed, median of {args.repeats}")
    for cfg in configs(args):
        batch = cfg.optim.batch_size
        steady = lambda times: (len(x) // batch * batch) / (sum(times[1:]) / len(times[1:]))  # noqa: E731
        plain, ours = [], []
        for _ in range(args.repeats):  # interleaved: noise on a shared machine hits both
            plain.append(steady(plain_epochs(cfg, x, y)))
            with tempfile.TemporaryDirectory() as tmp:
                ours.append(steady(cnnlab_epochs(cfg, x, y, Path(tmp))))
        mid_plain, mid_ours = statistics.median(plain), statistics.median(ours)
        each = ", ".join(f"{o / q:.3f}" for o, q in zip(ours, plain))
        print(f"{cfg.arch:<14} {mid_plain:>12.0f} {mid_ours:>13.0f} {mid_ours / mid_plain:>7.3f}  ({each})  batch {batch}",
              flush=True)


if __name__ == "__main__":
    main()
