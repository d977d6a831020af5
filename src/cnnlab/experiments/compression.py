"""The autoencoder of Exercise 3 judged as a codec for 28x28 notMNIST letters.

``compression_table``: bytes per image for the raw pixels, the code as float32, the code quantised to 8
bits, and PNG / JPEG at the 8-bit code's quality: each codec's settings are swept on the same images and
the bytes read off at the code's PSNR and, separately, at its SSIM (``matched``). PSNR is set-level: from
the MSE pooled over every pixel of every image (``cnnlab.metrics``); SSIM is the mean over images.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from cnnlab.metrics import quality

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


# ---- classical image codecs: PNG through PIL, JPEG through torchvision --------------------------------


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
    """(mean bytes per image, decoded images (N, 1, H, W) in [0, 1]) for greyscale JPEG at ``quality_level``
    (1-100) of uint8 images (N, H, W). torchvision's encoder and decoder take the whole list in one call:
    the same libjpeg settings, bytes and pixels as PIL's (tests pin both), without a Python round per image."""
    from torchvision.io import decode_jpeg, encode_jpeg

    grey = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)  # (N, 1, H, W); a flipped view is copied
    encoded = encode_jpeg(list(grey), quality=quality_level)  # N x (bytes,)
    decoded = torch.stack(decode_jpeg(encoded)).float().div_(255)  # (N, 1, H, W)
    return float(np.mean([len(e) for e in encoded])), decoded


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


@dataclass(frozen=True)
class Setting:
    """One codec setting measured on the image set: mean bytes per image and the set's PSNR and SSIM."""

    label: str
    bytes_per_image: float
    psnr_db: float
    ssim: float


def sweep(labels_and_round_trips, reference: torch.Tensor) -> list[Setting]:
    """Every (label, round_trip()) of a codec measured on ``reference``'s images."""
    out = []
    for label, round_trip in labels_and_round_trips:
        size, decoded = round_trip()
        q = quality(decoded, reference)
        out.append(Setting(label, size, q["psnr_db"], q["ssim"]))
    return out


# How far below the target a codec's best setting may be and still count as matched.
TOLERANCE = {"psnr_db": 0.5, "ssim": 0.01}


def matched(settings: list[Setting], metric: str, target: float) -> tuple[Setting | None, str]:
    """The codec's cost at quality ``target`` of ``metric`` (``psnr_db`` or ``ssim``), and how it was read.

    The cheapest setting at or above the target is the answer, interpolated linearly (bytes and both
    metrics) towards the best setting below the target when that one is cheaper; with every setting below,
    the best one counts when within ``TOLERANCE`` of the target, else there is no match (None, and a note
    that says so).
    """
    value = lambda s: getattr(s, metric)  # noqa: E731
    above = [s for s in settings if value(s) >= target]
    below = [s for s in settings if value(s) < target and np.isfinite(value(s))]
    unit = "dB" if metric == "psnr_db" else "SSIM"
    if not above:
        best = max(below, key=value, default=None)
        if best is None or target - value(best) > TOLERANCE[metric]:
            return None, f"no setting within {TOLERANCE[metric]:g} {unit}"
        return best, f"{best.label}: its best setting, {target - value(best):.2g} {unit} below"
    hi = min(above, key=lambda s: s.bytes_per_image)
    lo = max(below, key=value, default=None)
    if lo is None or lo.bytes_per_image >= hi.bytes_per_image or not np.isfinite(value(hi)):
        return hi, f"{hi.label}: the cheapest setting at or above"
    t = (target - value(lo)) / (value(hi) - value(lo))
    mix = lambda a, b: a + t * (b - a)  # noqa: E731
    return (Setting(f"{lo.label} .. {hi.label}", mix(lo.bytes_per_image, hi.bytes_per_image),
                    mix(lo.psnr_db, hi.psnr_db), mix(lo.ssim, hi.ssim)),
            f"interpolated between {lo.label} and {hi.label}")


# ---- the table ------------------------------------------------------------------------------------


def _row(method: str, bytes_per_image: float, decoded: torch.Tensor, reference: torch.Tensor, note: str = "") -> dict:
    return {"method": method, "bytes_per_image": round(bytes_per_image, 1),
            "ratio_vs_raw": round(RAW_BYTES / bytes_per_image, 2), **quality(decoded, reference), "note": note}


def _matched_row(codec: str, metric: str, setting: Setting | None, note: str) -> dict:
    what = "PSNR" if metric == "psnr_db" else "SSIM"
    if setting is None:
        return {"method": f"{codec} at the 8-bit code's {what}", "bytes_per_image": None, "ratio_vs_raw": None,
                "mse": None, "psnr_db": None, "ssim": None, "note": note}
    mse = 10 ** (-setting.psnr_db / 10) if np.isfinite(setting.psnr_db) else 0.0
    return {"method": f"{codec} at the 8-bit code's {what}", "bytes_per_image": round(setting.bytes_per_image, 1),
            "ratio_vs_raw": round(RAW_BYTES / setting.bytes_per_image, 2), "mse": mse, "psnr_db": setting.psnr_db,
            "ssim": setting.ssim, "note": note}


JPEG_QUALITIES = (1, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90, 95)


@torch.no_grad()
def compression_table(model, x_test: torch.Tensor, x_train_sample: torch.Tensor) -> tuple[list[dict], dict]:
    """Rows comparing the autoencoder as a codec against raw, PNG and JPEG, every row on the same images
    ``x_test`` (N, 1, 28, 28) in [0, 1]: PNG (posterised to 2, 4, 16 grey levels, and lossless) and JPEG
    (qualities ``JPEG_QUALITIES``) are swept, and each is read off at the 8-bit code's PSNR and at its SSIM
    (``matched``).

    ``x_train_sample`` sets the 8-bit quantiser's range (shipped once with the decoder). Returns the rows
    and a dict of one-off costs (decoder bytes, quantiser bytes) with the number of images.
    """
    model.eval()
    codes = model.encode(x_test)
    code_values = codes[0].numel()
    reconstruction = model.decode(codes)
    low, high = quantiser_range(model.encode(x_train_sample))
    dequantised = dequantise_8bit(quantise_8bit(codes, low, high), low, high).view_as(codes)
    recon_8bit = model.decode(dequantised)
    headline = quality(recon_8bit, x_test)

    images = _to_uint8_arrays(x_test)
    png_lossless_bytes, png_lossless = png_round_trip(images, 8)
    png = sweep([(f"{2 ** b} grey levels", lambda b=b: png_round_trip(images, b)) for b in (1, 2, 4)]
                + [("lossless", lambda: (png_lossless_bytes, png_lossless))], x_test)
    jpeg = sweep([(f"quality {q}", lambda q=q: jpeg_round_trip(images, q)) for q in JPEG_QUALITIES], x_test)
    rows = [
        _row("raw uint8 pixels", RAW_BYTES, x_test, x_test, "lossless"),
        _row("PNG (lossless)", png_lossless_bytes, png_lossless, x_test, "lossless"),
        _row(f"AE code float32 ({code_values} values)", code_values * 4, reconstruction, x_test),
        _row(f"AE code 8-bit ({code_values} values)", code_values, recon_8bit, x_test,
             "per-dimension range shipped once; the quality the codecs are matched to"),
    ]
    for metric in ("psnr_db", "ssim"):
        for codec, settings in (("PNG", png), ("JPEG", jpeg)):
            rows.append(_matched_row(codec, metric, *matched(settings, metric, headline[metric])))
    one_off = {"compression_images": len(x_test),
               "decoder_bytes_float32": sum(p.numel() for p in model.decoder.parameters()) * 4,
               "quantiser_range_bytes": (low.numel() + high.numel()) * 4,
               "codec_sweeps": {"PNG": [vars(s) for s in png], "JPEG": [vars(s) for s in jpeg]}}
    return rows, one_off


def compression_caption(one_off: dict) -> str:
    """The table's caption: the image set, what PSNR means here, the one-off cost."""
    return (f"Compression on the same {one_off['compression_images']:,} test images for every row; PSNR is "
            f"set-level (from the MSE pooled over all their pixels), SSIM the mean over images; codecs are read "
            f"off at the 8-bit code's quality; the decoder ({one_off['decoder_bytes_float32']:,} bytes as float32) "
            f"is shipped once")
