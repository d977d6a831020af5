"""The autoencoder of Exercise 3 judged as a codec for 28x28 notMNIST letters.

``compression_table``: bytes per image for the raw pixels, the code as float32, the code quantised to 8
bits, and PNG / JPEG encodings of the same images at a similar PSNR (``cnnlab.metrics``).
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import torch

from cnnlab.metrics import psnr, quality

RAW_BYTES = 28 * 28  # one uint8 per pixel


# ---- 8-bit quantisation of codes -------------------------------------------------------------------


def quantiser_range(train_codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension (low, high) of the training codes: sent once with the decoder."""
    flat = train_codes.flatten(1)  # (N, D)
    return flat.min(0).values, flat.max(0).values


def quantise_8bit(codes: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """(N, D) float -> (N, D) uint8, linear between each dimension's low and high."""
    scale = (high - low).clamp_min(1e-12)
    return ((codes.flatten(1) - low) / scale * 255).round().clamp(0, 255).to(torch.uint8)


def dequantise_8bit(q: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return q.float() / 255 * (high - low) + low


# ---- classical image codecs, through PIL ------------------------------------------------------------


def _to_uint8_arrays(images: torch.Tensor) -> np.ndarray:
    return (images.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (N, H, W)


def _codec_round_trip(images: np.ndarray, save: Callable[[np.ndarray, io.BytesIO], None]) -> tuple[float, torch.Tensor]:
    """(mean bytes per image, decoded images (N, 1, H, W) in [0, 1]) for one PIL encoder setting."""
    from PIL import Image

    sizes, decoded = [], []
    for img in images:
        buf = io.BytesIO()
        save(img, buf)
        sizes.append(buf.tell())
        buf.seek(0)
        decoded.append(np.asarray(Image.open(buf).convert("L")))
    out = torch.from_numpy(np.stack(decoded)).float().div_(255).unsqueeze(1)
    return float(np.mean(sizes)), out


def jpeg_round_trip(images: np.ndarray, quality_level: int) -> tuple[float, torch.Tensor]:
    from PIL import Image

    return _codec_round_trip(images, lambda a, buf: Image.fromarray(a, "L").save(buf, "JPEG", quality=quality_level))


def png_round_trip(images: np.ndarray, bits: int = 8) -> tuple[float, torch.Tensor]:
    """PNG of the images posterised to 2**bits grey levels (bits=8 is plain lossless greyscale)."""
    from PIL import Image

    if bits == 8:
        return _codec_round_trip(images, lambda a, buf: Image.fromarray(a, "L").save(buf, "PNG", optimize=True))
    levels = 2 ** bits
    # Each pixel becomes the index of the nearest of `levels` evenly spaced greys; the palette maps back.
    indices = np.round(images.astype(np.float32) / 255 * (levels - 1)).astype(np.uint8)  # (N, H, W)
    greys = np.round(np.arange(levels) * 255 / (levels - 1)).astype(np.uint8)
    rgb_palette = np.repeat(greys, 3).tolist()

    def save(index: np.ndarray, buf: io.BytesIO) -> None:
        img = Image.fromarray(index, "P")
        img.putpalette(rgb_palette)
        img.save(buf, "PNG", optimize=True, bits=bits)

    return _codec_round_trip(indices, save)


def closest_psnr(candidates, target_psnr: float, round_trip, images: np.ndarray, reference: torch.Tensor):
    """(setting, bytes, decoded) of the codec setting whose PSNR is closest to ``target_psnr``."""
    best = None
    for setting in candidates:
        size, decoded = round_trip(images, setting)
        gap = abs(psnr(decoded, reference) - target_psnr)
        if best is None or gap < best[0]:
            best = (gap, setting, size, decoded)
    return best[1:]


# ---- the table ------------------------------------------------------------------------------------


def _row(method: str, bytes_per_image: float, decoded: torch.Tensor, reference: torch.Tensor, note: str = "") -> dict:
    return {"method": method, "bytes_per_image": round(bytes_per_image, 1),
            "ratio_vs_raw": round(RAW_BYTES / bytes_per_image, 2), **quality(decoded, reference), "note": note}


@torch.no_grad()
def compression_table(model, x_test: torch.Tensor, x_train_sample: torch.Tensor,
                      max_images: int = 500) -> tuple[list[dict], dict]:
    """Rows comparing the autoencoder as a codec against raw, PNG and JPEG on ``x_test`` (N, 1, 28, 28).

    ``x_train_sample`` sets the 8-bit quantiser's range (shipped once with the decoder). Only the first
    ``max_images`` test images are encoded: PIL encodes one image per call, and the PSNR-matching search
    tries a dozen settings. Returns the rows and a dict of one-off costs (decoder bytes, quantiser bytes).
    """
    model.eval()
    x_test = x_test[:max_images]
    codes = model.encode(x_test)
    code_values = codes[0].numel()
    reconstruction = model.decode(codes)
    low, high = quantiser_range(model.encode(x_train_sample))
    dequantised = dequantise_8bit(quantise_8bit(codes, low, high), low, high).view_as(codes)
    recon_8bit = model.decode(dequantised)
    ae_psnr = psnr(reconstruction, x_test)

    images = _to_uint8_arrays(x_test)
    png_bits, png_bytes, png_decoded = closest_psnr((1, 2, 4), ae_psnr, png_round_trip, images, x_test)
    jpeg_q, jpeg_bytes, jpeg_decoded = closest_psnr(
        [1, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90], ae_psnr, jpeg_round_trip, images, x_test)
    png_lossless_bytes, png_lossless = png_round_trip(images, 8)
    rows = [
        _row("raw uint8 pixels", RAW_BYTES, x_test, x_test, "lossless"),
        _row("PNG (lossless)", png_lossless_bytes, png_lossless, x_test, "lossless"),
        _row(f"AE code float32 ({code_values} values)", code_values * 4, reconstruction, x_test),
        _row(f"AE code 8-bit ({code_values} values)", code_values, recon_8bit, x_test,
             "per-dimension range shipped once"),
        _row(f"PNG {2 ** png_bits} grey levels ({png_bits}-bit)", png_bytes, png_decoded, x_test, "PSNR closest to the AE's"),
        _row(f"JPEG quality {jpeg_q}", jpeg_bytes, jpeg_decoded, x_test, "PSNR closest to the AE's; headers dominate at 28x28"),
    ]
    one_off = {"compression_images": len(x_test),
               "decoder_bytes_float32": sum(p.numel() for p in model.decoder.parameters()) * 4,
               "quantiser_range_bytes": (low.numel() + high.numel()) * 4}
    return rows, one_off
