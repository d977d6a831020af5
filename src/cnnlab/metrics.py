"""Image-quality and compression metrics for images in [0, 1]: MSE, PSNR, SSIM, bytes per image.

PSNR is taken from the MSE over the whole set (10 log10(1 / MSE), in dB): a set-level figure, the
convention under which the baseline of predicting the mean image is comparable across runs. SSIM is the usual Gaussian-window SSIM (11x11,
sigma 1.5, K1 = 0.01, K2 = 0.03) over the 'valid' windows (Wang et al. 2004), averaged over images.
Not torchmetrics' SSIM: it also scores windows reaching into reflect-padded borders and, on a single
11x11 window, disagrees with the definition computed by hand (``tests/test_notmnist_models.py`` pins
the definition); on 28x28 letters with blank borders that convention changes the number.
The notMNIST codec comparison built on them is ``experiments.compression``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int = 1) -> float:
    """Top-``k`` accuracy (a fraction) of logits (N, K) against targets (N,): the one used everywhere."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices  # (N, k)
    return (top == targets[:, None]).any(1).float().mean().item()


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(F.mse_loss(pred.float(), target.float()))


def psnr_from_mse(mse_value: float, max_value: float = 1.0) -> float:
    """PSNR in dB; identical images give +inf."""
    return math.inf if mse_value <= 0 else 10.0 * math.log10(max_value ** 2 / mse_value)


def psnr(pred: torch.Tensor, target: torch.Tensor, max_value: float = 1.0) -> float:
    return psnr_from_mse(mse(pred, target), max_value)


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    return g / g.sum()  # (size,)


def _valid_blur(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n - k + 1, n) matrix whose row i holds the k-tap window ``g`` at columns i..i+k-1: multiplying by
    it blurs a length-n axis over its 'valid' windows."""
    k = len(g)
    columns = torch.arange(n - k + 1, device=g.device)[:, None] + torch.arange(k, device=g.device)  # (n-k+1, k)
    return torch.zeros(n - k + 1, n, dtype=g.dtype, device=g.device).scatter_(1, columns, g.expand(n - k + 1, k))


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM of ``pred`` against ``target``, both (B, C, H, W) in ``[0, data_range]``: the mean over
    every 'valid' window of every image and channel, computed in float32 whatever the input dtype.

    Raises:
        ValueError: the two are not (B, C, H, W) tensors of one shape, or smaller than the window.
    """
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f"SSIM takes two (B, C, H, W) tensors of one shape; got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    x, y = pred.float(), target.float()
    h, w = x.shape[-2:]
    if h < window or w < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels (its window); got {h}x{w}")
    # The five local statistics at once, blurred with the Gaussian window separably, each pass one matrix
    # product with a banded matrix: on a CPU, where depthwise convolution kernels are slow, faster than the
    # same blur as two grouped convolutions (timings in the commit that made the change). Its work grows as
    # H*W*(H+W) rather than H*W*window: right for the small images scored here (28x28 letters), not for
    # photographs. (Under torch.set_float32_matmul_precision("high") a GPU would run these products in
    # TF32, too coarse for E[x^2] - mu^2; cnnlab never sets it.)
    stats = torch.stack([x, y, x * x, y * y, x * y], dim=1)  # (B, 5, C, H, W)
    g = _gaussian_1d(window, sigma).to(x.device)
    stats = _valid_blur(h, g) @ stats @ _valid_blur(w, g).T  # (B, 5, C, H', W')
    mu_x, mu_y, xx, yy, xy = stats.unbind(1)  # each (B, C, H', W')
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def quality(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    m = mse(pred, target)
    return {"mse": m, "psnr_db": psnr_from_mse(m), "ssim": ssim(pred, target)}
