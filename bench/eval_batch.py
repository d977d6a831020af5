"""Evaluation speed of every CIFAR-10 architecture, or of the Food-101 backbones, by evaluation batch
size: why ``data.eval_batch_size`` defaults to a small batch on a CPU (a large batch's activations
overflow the caches, and they are memory too) and a large one on a GPU. Eval mode, no gradients,
channels_last, in the precision cnnlab picks here; random images (speed does not depend on their content).

    python bench/eval_batch.py [--images 4096] [--sizes 1024,256,128,64] [--archs a,b]
    python bench/eval_batch.py --backbones efficientnet_lite0,efficientnet_lite2   # at each one's input size

Prints images/s per network and batch size (the median of 3 timed passes after one untimed one), the
fastest size of each, and (backbones) the resident memory the largest pass added, sampled every 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import _common
import torch

from cnnlab.models import create_model, list_models
from cnnlab.train.engine import resolve_precision, uses_cuda


def images_per_s(model: torch.nn.Module, x: torch.Tensor, batch: int, bf16: bool) -> float:
    def one_pass() -> float:
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            for i in range(0, len(x), batch):
                model(x[i:i + batch])
        if x.is_cuda:
            torch.cuda.synchronize()
        return len(x) / (time.perf_counter() - start)

    one_pass()  # untimed: first-call set-up (oneDNN primitives, cuDNN plans)
    return statistics.median(one_pass() for _ in range(3))


def resident_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e9


def with_peak(fn, *args) -> tuple[float, float]:
    """(``fn(*args)``, the most resident memory it added above what was resident before, GB; on a GPU,
    the host's). What earlier passes freed is handed back to the OS first, or it would absorb this one's."""
    from cnnlab.train.engine import release_memory

    release_memory()
    base, peak, done = resident_gb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_gb())
            time.sleep(0.01)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        return fn(*args), max(peak[0] - base, 0.0)
    finally:
        done.set()
        watcher.join()


def backbones(names: list[str], sizes: list[int], images: int, device: torch.device, bf16: bool) -> None:
    from cnnlab.experiments.food import backbone_preprocess
    from cnnlab.models.transfer import create_transfer_net

    print(f"{'backbone':<20}{'input':>6}" + "".join(f"{f'batch {s}':>12}" for s in sizes) + "   fastest   "
          + "".join(f"{f'+GB @{s}':>9}" for s in sizes))
    for name in names:
        pre = backbone_preprocess(name)
        net = create_transfer_net(name, "linear", 10, pretrained=False).eval().to(device,
                                                                                   memory_format=torch.channels_last)
        x = torch.randn(images, 3, pre.input_size, pre.input_size, device=device)
        x = x.contiguous(memory_format=torch.channels_last)
        measured = {s: with_peak(images_per_s, net, x, s, bf16) for s in sizes}
        speeds = {s: v[0] for s, v in measured.items()}
        print(f"{name:<20}{pre.input_size:>6}" + "".join(f"{v:>12.0f}" for v in speeds.values())
              + f"   {max(speeds, key=speeds.get):>7}   " + "".join(f"{v[1]:>9.2f}" for v in measured.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=None, help="images timed (default 4096; 512 with --backbones)")
    ap.add_argument("--sizes", default=None, help="batch sizes (default 1024,256,128,64; 128,64,32,16 with --backbones)")
    ap.add_argument("--archs", default=",".join(list_models()))
    ap.add_argument("--backbones", default="", help="Food-101 backbones instead of the CIFAR architectures "
                                                    "(default --images 512, --sizes 128,64,32,16)")
    args = ap.parse_args()
    device = torch.device("cuda" if uses_cuda() else "cpu")
    bf16 = resolve_precision("auto").startswith("bf16")  # cnnlab's choice here; anything else is timed in fp32
    if args.backbones:
        sizes = [int(s) for s in (args.sizes or "128,64,32,16").split(",")]
        images = args.images or 512
        _common.header(f"backbone evaluation images/s by batch size, {images} images, "
                       f"{'bf16 autocast' if bf16 else 'fp32'}, {_common.cpu_model()}"
                       + ("; +GB: host memory" if device.type == "cuda" else ""))
        backbones(args.backbones.split(","), sizes, images, device, bf16)
        return
    sizes = [int(s) for s in (args.sizes or "1024,256,128,64").split(",")]
    args.images = args.images or 4096
    _common.header(f"evaluation images/s by batch size, {args.images} images, {'bf16 autocast' if bf16 else 'fp32'}, "
                   f"{_common.cpu_model()}")
    print(f"{'arch':<14}" + "".join(f"{f'batch {s}':>12}" for s in sizes) + "   fastest")
    x = torch.randn(args.images, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    for arch in args.archs.split(","):
        model = create_model(arch).eval().to(device, memory_format=torch.channels_last)
        speeds = {s: images_per_s(model, x, s, bf16) for s in sizes}
        print(f"{arch:<14}" + "".join(f"{v:>12.0f}" for v in speeds.values()) + f"   {max(speeds, key=speeds.get)}")


if __name__ == "__main__":
    main()
