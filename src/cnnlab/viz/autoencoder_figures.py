"""Figures of the autoencoder exercise, written as PNG with matplotlib's Agg backend (no display).

- ``image_rows``: rows of 28x28 images with a label per row (inputs over reconstructions, the lab's
  Figure 1; or noisy / denoised / clean for the denoising autoencoder).
- ``code_tiles``: each image's code drawn as a small grey tile (32 values -> 4x8).
- ``sweep_plot``: test loss and PSNR against the code size.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import torch  # noqa: E402

from cnnlab import files


def _save(fig, path: Path) -> Path:
    path = Path(path)
    files.save_figure(fig, path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def image_rows(rows: list[tuple[str, torch.Tensor]], path: str | Path, title: str = "") -> Path:
    """One row per (label, images (N, 1, H, W) in [0, 1]), each row one ``torchvision.utils.make_grid``
    strip; the rows line up column by column."""
    from torchvision.utils import make_grid

    n = min(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.1 * n, 1.2 * len(rows)), squeeze=False)
    for (label, images), ax in zip(rows, axes[:, 0]):
        strip = make_grid(images[:n].detach().float().cpu().clamp(0, 1), nrow=n, padding=2, pad_value=1.0)
        ax.imshow(strip[0].numpy(), cmap="gray", vmin=0, vmax=1)  # (3, H', W') grey strip: one channel
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def tile_shape(size: int) -> tuple[int, int]:
    """The most nearly square (rows, cols) with rows * cols == size and rows <= cols: 32 -> (4, 8)."""
    rows = next(r for r in range(int(math.isqrt(size)), 0, -1) if size % r == 0)
    return rows, size // rows


def code_tiles(codes: torch.Tensor, path: str | Path, title: str = "codes") -> Path:
    """Each row of ``codes`` (N, D) as a (rows x cols) tile; one shared grey scale for all tiles."""
    codes = codes.detach().float().flatten(1).cpu()
    h, w = tile_shape(codes.shape[1])
    tiles = codes.view(len(codes), h, w)  # (N, D) -> (N, h, w)
    fig, axes = plt.subplots(1, len(codes), figsize=(1.1 * len(codes), 1.1 * h / w + 0.4), squeeze=False)
    vmax = float(codes.max()) or 1.0
    for c, ax in enumerate(axes[0]):
        ax.imshow(tiles[c].numpy(), cmap="gray", vmin=0, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} ({h}x{w} = {codes.shape[1]} values each)")
    return _save(fig, path)


def sweep_plot(rows: list[dict], path: str | Path) -> Path:
    """Test loss and PSNR (dB) against the code size (log2 axis), from the sweep's table rows."""
    dims = [r["code_dim"] for r in rows]
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(dims, [r["test_loss"] for r in rows], "o-")
    ax_loss.set_ylabel("test loss")
    ax_psnr.plot(dims, [r["test_psnr"] for r in rows], "o-", color="tab:orange")
    ax_psnr.set_ylabel("test PSNR (dB)")
    for ax in (ax_loss, ax_psnr):
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.set_xlabel("code size")
        ax.grid(alpha=0.3)
    fig.suptitle("dense autoencoder: impact of the code size")
    fig.tight_layout()
    return _save(fig, path)
