"""Evaluation speed of every CIFAR-10 architecture by evaluation batch size: why ``data.eval_batch_size``
defaults to a small batch on a CPU (a large batch's activations overflow the caches) and a large one on
a GPU. Eval mode, no gradients, channels_last, in the precision cnnlab picks here; random images (speed
does not depend on their content).

    python bench/eval_batch.py [--images 4096] [--sizes 1024,256,128,64] [--archs a,b]

Prints images/s per architecture and batch size (the median of 3 timed passes after one untimed one),
and the fastest size of each.
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--sizes", default="1024,256,128,64")
    ap.add_argument("--archs", default=",".join(list_models()))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    device = torch.device("cuda" if uses_cuda() else "cpu")
    bf16 = resolve_precision("auto").startswith("bf16")  # cnnlab's choice here; anything else is timed in fp32
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
