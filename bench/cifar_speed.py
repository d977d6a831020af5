"""Training throughput of every CIFAR-10 architecture: cnnlab (Lightning) against a minimal plain
PyTorch loop on the same model, data, augmentation, batch, optimiser and precision, measured in one
run and interleaved so that machine noise hits both alike.

    python bench/cifar_speed.py [--images 2048] [--epochs 3] [--batch-size 64] [--archs a,b]

Prints images/s of each and the ratio cnnlab / plain (target >= 0.95).
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (sys.path, data location)
import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from cnnlab.config import build
from cnnlab.data import cifar10
from cnnlab.data.loader import TensorLoader, class_balanced_indices
from cnnlab.experiments.cifar import CifarConfig, build_model, train_transform
from cnnlab.models import list_models
from cnnlab.train.classifier import ClassifierModule, make_optimizer, make_schedule
from cnnlab.train.engine import Length, make_trainer, quiet_lightning, resolve_precision


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


def cnnlab_epochs(cfg: CifarConfig, x, y, tmp) -> list[float]:
    quiet_lightning()
    torch.manual_seed(0)
    module = ClassifierModule(build_model(cfg.arch, cfg.model), cfg.optim, channels_last=cfg.hardware.channels_last)
    trainer, _ = make_trainer(cfg.run, cfg.hardware, Length(cfg.optim.epochs), tmp, monitor="train_acc", mode="max",
                              has_eval=False)
    timer = EpochTimer()
    trainer.callbacks.append(timer)
    loader = TensorLoader(x, y, cfg.optim.batch_size, shuffle=True, drop_last=True, transform=train_transform(cfg), seed=0)
    trainer.fit(module, train_dataloaders=loader)
    return timer.times


def plain_epochs(cfg: CifarConfig, x, y) -> list[float]:
    """What a user would write by hand: the same model and data path, no framework."""
    torch.manual_seed(0)
    model = build_model(cfg.arch, cfg.model).to(DEVICE, memory_format=torch.channels_last).train()
    loader = TensorLoader(x, y, cfg.optim.batch_size, shuffle=True, drop_last=True, transform=train_transform(cfg), seed=0)
    optimizer = make_optimizer(model, cfg.optim)
    schedule = make_schedule(optimizer, cfg.optim, cfg.optim.epochs * len(loader))
    bf16 = resolve_precision(cfg.hardware.precision) == "bf16-mixed"
    times = []
    for _ in range(cfg.optim.epochs):
        synchronize()
        start = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(DEVICE, non_blocking=True), yb.to(DEVICE, non_blocking=True)
            with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=3, help="the first epoch is warm-up and not counted")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--archs", default=",".join(a for a in list_models()))
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    _common.header("cifar_speed: training images/s, cnnlab vs plain PyTorch loop")
    data = cifar10.load(_common.shared_data("cifar10-jpg.tar.gz"))
    idx = class_balanced_indices(data.train.y, args.images)
    x, y = data.train.x[idx], data.train.y[idx]
    import tempfile
    print(f"{'arch':<14} {'plain img/s':>12} {'cnnlab img/s':>13} {'ratio':>7}   precision={resolve_precision('auto')}, "
          f"batch={args.batch_size}, {args.images} images, epochs 2..{args.epochs} timed, best of {args.repeats}")
    for arch in args.archs.split(","):
        cfg = build(CifarConfig, arch=arch, epochs=args.epochs, batch_size=args.batch_size, progress=False, logger="none")
        steady = lambda times: (len(x) // args.batch_size * args.batch_size) / (sum(times[1:]) / len(times[1:]))  # noqa: E731
        plain, ours = [], []
        for _ in range(args.repeats):  # interleaved: noise on a shared machine hits both
            plain.append(steady(plain_epochs(cfg, x, y)))
            with tempfile.TemporaryDirectory() as tmp:
                from pathlib import Path
                ours.append(steady(cnnlab_epochs(cfg, x, y, Path(tmp))))
        print(f"{arch:<14} {max(plain):>12.0f} {max(ours):>13.0f} {max(ours) / max(plain):>7.3f}", flush=True)


if __name__ == "__main__":
    main()
