"""airbench94 as a plain PyTorch loop: the peer of ``bench/cifar_time_to_acc.py``.

    python bench/airbench_plain.py [--epochs 8] [--seeds 0,1,2] [--precision bf16-mixed] [--batch 1024]

What a practitioner who wants CIFAR-10 fast writes instead of using a framework: Keller Jordan's airbench94
(2024) training loop, written here from its published description with nothing of cnnlab's engine, data
loader, optimiser set-up or model code. Its own hyper-parameters (learning rate 11.5 and weight decay
0.0153 per 1024 examples on a summed loss, momentum 0.85 Nesterov, 64x learning rate on BatchNorm shifts,
label smoothing 0.2, a triangular schedule 0.2 -> 1 -> 0.07 peaking at 23% of the steps, lookahead every
5 steps), its net (frozen 2x2 patch whitening; three conv-pool-BN-GELU-conv-BN-GELU groups of 64, 256, 256
filters with Dirac-initialised convs and BatchNorm scales fixed at 1; max-pool; a bias-free linear layer
scaled by 1/9), 2-pixel reflect-padded crops, alternating flips, the whitening bias frozen after 3 epochs,
all 50,000 training images, and the 10,000 test images scored once at the end with 6 views (flips x
1-pixel shifts). On a CPU it runs under bf16 autocast, as cnnlab does by default.

``--epochs`` may be fractional (airbench94 itself trains 9.9); ``cifar_time_to_acc.py --peer`` runs
``train`` after each cnnlab run, on the same data, and prints the two side by side.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import _common
from cnnlab.data import cifar10

MOMENTUM, LR_PER_1024, WD_PER_1024, BIAS_SCALE, SMOOTHING = 0.85, 11.5, 0.0153, 64.0, 0.2


class FixedScaleBN(nn.BatchNorm2d):
    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-12, momentum=0.4)  # airbench's 0.6 in the other convention
        self.weight.requires_grad_(False)


class DiracConv(nn.Conv2d):
    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, padding="same", bias=False)
        nn.init.dirac_(self.weight.data[:cin])


def conv_group(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(DiracConv(cin, cout), nn.MaxPool2d(2), FixedScaleBN(cout), nn.GELU(),
                         DiracConv(cout, cout), FixedScaleBN(cout), nn.GELU())


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 9


def make_net(train_x: torch.Tensor) -> nn.Sequential:
    """The net, its 24 whitening filters fitted to 2x2 patches of the first 5,000 (normalised) images."""
    net = nn.Sequential(nn.Conv2d(3, 24, 2, padding=0, bias=True), nn.GELU(), conv_group(24, 64),
                        conv_group(64, 256), conv_group(256, 256), nn.MaxPool2d(3), nn.Flatten(),
                        nn.Linear(256, 10, bias=False), Scale())
    with torch.no_grad():
        patches = train_x[:5000].unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 12).double()
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first, as airbench orders them
        filters = (eigenvectors.T / torch.sqrt(eigenvalues[:, None] + 5e-4)).float().view(12, 3, 2, 2)
        net[0].weight.copy_(torch.cat([filters, -filters]))
        net[0].weight.requires_grad_(False)
        net[0].bias.zero_()
    return net.to(memory_format=torch.channels_last)


def normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(cifar10.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cifar10.STD).view(1, 3, 1, 1)
    return (x.float() / 255 - mean) / std


@torch.no_grad()
def six_view_accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, autocast) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(x), 500):
        xb = x[i:i + 500].contiguous(memory_format=torch.channels_last)
        with autocast():
            def mirror(v):
                return 0.5 * net(v).float() + 0.5 * net(v.flip(-1)).float()
            padded = F.pad(xb, (1,) * 4, mode="reflect")
            logits = 0.5 * mirror(xb) + 0.25 * (mirror(padded[:, :, :32, :32]) + mirror(padded[:, :, 2:, 2:]))
        correct += int((logits.argmax(1) == y[i:i + 500]).sum())
    net.train()
    return correct / len(x)


def kilostep() -> float:
    """airbench's normaliser of its per-1024-example hyper-parameters (momentum's effective step count)."""
    return 1024 * (1 + 1 / (1 - MOMENTUM))


def mean_loss_recipe(batch: int) -> tuple[float, float]:
    """airbench94's learning rate and weight decay at ``batch``, in the terms of a mean loss (cnnlab's):
    (lr, weight decay as a multiple of lr); 1.5 and 1.33e-3 at 1024."""
    return LR_PER_1024 / kilostep() * batch, WD_PER_1024 / LR_PER_1024


def train(seed: int, epochs: float, precision: str = "bf16-mixed", data=None, batch: int = 1024) -> dict:
    """One airbench94 run; returns test accuracy (fraction), train seconds and wall seconds (scoring included).

    ``batch`` other than airbench94's 1024 keeps its hyper-parameters per example: the same learning rate on
    the summed loss, weight decay in proportion to the batch."""
    data = data or cifar10.load(_common.shared_data("cifar10-jpg.tar.gz"))
    torch.manual_seed(seed)
    started = time.perf_counter()
    x, y = normalise(data.train.x), data.train.y
    if not 0 < batch <= len(x):
        raise ValueError(f"batch must be between 1 and the {len(x)} training images, got {batch}")
    net = make_net(x)
    steps_per_epoch = len(x) // batch
    total = math.ceil(steps_per_epoch * epochs)
    lr, wd = LR_PER_1024 / kilostep(), WD_PER_1024 * batch / kilostep()
    bn_shifts = [m.bias for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    others = [p for p in net.parameters() if p.requires_grad and all(p is not b for b in bn_shifts)]
    optimizer = torch.optim.SGD([{"params": bn_shifts, "lr": lr * BIAS_SCALE, "weight_decay": wd / (lr * BIAS_SCALE)},
                                 {"params": others, "lr": lr, "weight_decay": wd / lr}],
                                momentum=MOMENTUM, nesterov=True)
    peak = int(0.23 * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 0.2 + 0.8 * i / peak if i < peak else 1.0 - 0.93 * (i - peak) / (total - peak))
    slow = [t.detach().clone() for t in net.state_dict().values()]

    def lookahead(decay: float) -> None:
        with torch.no_grad():
            for s, t in zip(slow, net.state_dict().values()):
                if t.is_floating_point():
                    s.lerp_(t, 1 - decay)
                    t.copy_(s)

    g = torch.Generator().manual_seed(seed)
    padded = F.pad(x, (2,) * 4, mode="reflect")
    flipped = torch.rand(len(x), generator=g) < 0.5
    bf16 = precision.startswith("bf16")

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    step, train_s = 0, 0.0
    for epoch in range(math.ceil(epochs)):
        epoch_start = time.perf_counter()
        net[0].bias.requires_grad_(epoch < 3)
        order = torch.randperm(len(x), generator=g)
        dy, dx = torch.randint(0, 5, (2, len(x)), generator=g)
        mirrored = flipped ^ bool(epoch % 2)
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            rows = (dy[idx, None] + torch.arange(32))[:, None, :, None]
            cols = (dx[idx, None] + torch.arange(32))[:, None, None, :]
            xb = padded[idx[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
            xb = torch.where(mirrored[idx, None, None, None], xb.flip(3), xb).contiguous(memory_format=torch.channels_last)
            with autocast():
                loss = F.cross_entropy(net(xb).float(), y[idx], label_smoothing=SMOOTHING, reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95 ** 5 * (step / total) ** 3)
            if step >= total:
                lookahead(1.0)
                break
        train_s += time.perf_counter() - epoch_start
    acc = six_view_accuracy(net, normalise(data.test.x), data.test.y, autocast)
    return {"acc": acc, "train_s": train_s, "wall_s": time.perf_counter() - started}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=float, default=8)
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
    p.add_argument("--precision", default="bf16-mixed", choices=["bf16-mixed", "32-true"])
    p.add_argument("--batch", type=int, default=1024, help="images per step (airbench94: 1024); the "
                                                          "hyper-parameters stay per example")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    _common.header(f"airbench_plain: airbench94 as a plain PyTorch loop, {args.epochs:g} epochs, {args.precision}, "
                   f"batch {args.batch}, seeds {seeds}; CPU: {_common.cpu_model()}")
    data = cifar10.load(_common.shared_data("cifar10-jpg.tar.gz"))
    runs = []
    for seed in seeds:
        r = train(seed, args.epochs, args.precision, data, args.batch)
        runs.append(r)
        print(f"seed {seed}: test {100 * r['acc']:.2f}% (6 views), train {r['train_s']:.1f} s, wall {r['wall_s']:.1f} s",
              flush=True)
    print(f"# median test accuracy {100 * statistics.median(r['acc'] for r in runs):.2f}%, "
          f"median train {statistics.median(r['train_s'] for r in runs):.1f} s")


if __name__ == "__main__":
    main()
