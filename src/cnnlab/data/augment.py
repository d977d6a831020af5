"""Whole-batch image augmentation on uint8 or float tensors shaped (B, C, H, W)."""

from __future__ import annotations

import torch


def random_window(x: torch.Tensor, size: int, g: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size), a window at a random offset per image, in one gather."""
    b, c, h, w = x.shape
    dy = torch.randint(0, h - size + 1, (b,), generator=g)
    dx = torch.randint(0, w - size + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(size))[:, None, :, None]  # (B, 1, size, 1)
    cols = (dx[:, None] + torch.arange(size))[:, None, None, :]  # (B, 1, 1, size)
    batch = torch.arange(b)[:, None, None, None]
    chan = torch.arange(c)[None, :, None, None]
    return x[batch, chan, rows, cols]  # (B, C, size, size)


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator | None = None, fill: str = "zeros") -> torch.Tensor:
    """Pad square (B, C, S, S) images by ``padding`` and cut a random SxS window per image. ``fill``:
    "zeros" (black borders) or "reflect" (mirrored edge pixels, as airbench translates: no border is
    ever seen that no test image has)."""
    if padding <= 0:
        return x
    if fill not in ("zeros", "reflect"):
        raise ValueError(f"fill must be 'zeros' or 'reflect', not {fill!r}")
    mode = "constant" if fill == "zeros" else "reflect"
    return random_window(torch.nn.functional.pad(x, (padding,) * 4, mode=mode), x.shape[-1], g)


def random_flip(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = torch.rand(x.shape[0], generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class Normalize:
    """uint8 (B, C, H, W) -> float32 normalised, optionally augmented and channels_last."""

    def __init__(self, mean, std, *, crop_padding: int = 0, crop_fill: str = "zeros", flip: bool = False,
                 channels_last: bool = True):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255
        self.crop_padding, self.crop_fill, self.flip, self.channels_last = crop_padding, crop_fill, flip, channels_last

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, g, self.crop_fill)
        if self.flip:
            x = random_flip(x, g)
        x = (x.float() - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
