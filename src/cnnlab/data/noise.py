"""Seeded noise for denoising autoencoders, applied to whole batches of float images in [0, 1].

A spec is ``KIND:AMOUNT``: ``gaussian:0.5`` adds 0.5 * N(0, 1) to every pixel and clips to [0, 1] (the
lab's noise factor); ``saltpepper:0.1`` sets 10% of the pixels to 0 or 1 (half each).

    spec = parse_noise("gaussian:0.5")
    x_test_noisy = noisy_copy(x_test, spec, seed=0)      # fixed test noise, the same every run
    loader = TensorLoader(x, x, 128, shuffle=True, transform=NoiseTransform(spec))  # fresh each epoch
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from cnnlab.errors import ConfigError
from cnnlab.registry import Registry

NoiseFn = Callable[[torch.Tensor, float, "torch.Generator | None"], torch.Tensor]
NOISES = Registry("noise")


@NOISES.register("gaussian")
def gaussian(x: torch.Tensor, factor: float, g: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
    return (x + factor * noise).clamp_(0.0, 1.0)


@NOISES.register("saltpepper")
def salt_and_pepper(x: torch.Tensor, fraction: float, g: torch.Generator | None = None) -> torch.Tensor:
    u = torch.rand(x.shape, generator=g, dtype=x.dtype, device=x.device)
    # u < fraction/2 -> pepper (0), fraction/2 <= u < fraction -> salt (1), else untouched: one draw per pixel.
    out = torch.where(u < fraction, (u >= fraction / 2).to(x.dtype), x)
    return out


# Valid amounts per kind: (low, high) inclusive.
AMOUNT_RANGE = {"gaussian": (0.0, float("inf")), "saltpepper": (0.0, 1.0)}


@dataclass(frozen=True)
class NoiseSpec:
    kind: str
    amount: float

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"


def parse_noise(spec: str) -> NoiseSpec:
    """``'gaussian:0.5'`` -> NoiseSpec('gaussian', 0.5); anything malformed is a ConfigError."""
    kind, sep, amount_text = str(spec).strip().partition(":")
    if not sep:
        raise ConfigError(f"noise {spec!r}: expected KIND:AMOUNT, e.g. gaussian:0.5 or saltpepper:0.1")
    NOISES.get(kind)  # unknown kind -> error listing the known ones
    try:
        amount = float(amount_text)
    except ValueError:
        raise ConfigError(f"noise {spec!r}: amount {amount_text!r} is not a number") from None
    low, high = AMOUNT_RANGE[kind]
    if not low <= amount <= high:
        raise ConfigError(f"noise {spec!r}: {kind} amount must be in [{low:g}, {high:g}]")
    return NoiseSpec(kind, amount)


def add_noise(x: torch.Tensor, spec: NoiseSpec | str, g: torch.Generator | None = None) -> torch.Tensor:
    """A noisy copy of ``x`` (float, [0, 1]); ``x`` itself is left untouched."""
    spec = parse_noise(spec) if isinstance(spec, str) else spec
    return NOISES.get(spec.kind)(x, spec.amount, g)


def noisy_copy(x: torch.Tensor, spec: NoiseSpec | str, seed: int) -> torch.Tensor:
    """The same noise for the same seed: used for the test set so every epoch and run is comparable."""
    return add_noise(x, spec, torch.Generator(device=x.device).manual_seed(seed))


class NoiseTransform:
    """A ``TensorLoader`` batch transform: fresh noise per batch from the loader's per-epoch generator."""

    def __init__(self, spec: NoiseSpec | str):
        self.spec = parse_noise(spec) if isinstance(spec, str) else spec

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        return add_noise(x, self.spec, g)
