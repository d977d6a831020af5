"""Image files as people see them: decoded to the 8-bit RGB that an image viewer shows.

* EXIF orientation is applied (phones store pixels sideways and say so in a tag);
* grey, 1-bit, palette, CMYK and YCbCr images are converted to RGB;
* transparency (RGBA, LA, PA, or a palette/grey/RGB transparent colour) is composited over white, as a
  viewer or a web page shows it;
* 16-bit grey (PNG, TIFF) is scaled to 8 bits (v / 257, rounded), not clipped at 255.

Anything else (floating-point pixels, which have no display range) is a ``DataError`` naming the file.
Files and folders that archive tools and desktops add beside data (``__MACOSX/``, ``._*`` AppleDouble
files, ``.ipynb_checkpoints/``, ``Thumbs.db``, ``desktop.ini``...) are recognised by ``is_junk``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

JUNK_NAMES = frozenset({"__MACOSX", "Thumbs.db", "thumbs.db", "desktop.ini", "Desktop.ini", "$RECYCLE.BIN"})
SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def is_junk(name: str) -> bool:
    """True for names that archive tools, desktops and notebooks add beside data: hidden names
    (``.DS_Store``, ``._0001.jpg``, ``.ipynb_checkpoints``), ``__MACOSX``, ``Thumbs.db``, ``desktop.ini``."""
    return name.startswith(".") or name in JUNK_NAMES


def count_junk(root: Path) -> int:
    """How many files under ``root`` are junk or inside a junk folder."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        junk_dirs = [d for d in dirnames if is_junk(d)]
        for d in junk_dirs:
            count += sum(len(f) for _, _, f in os.walk(os.path.join(dirpath, d)))
            dirnames.remove(d)
        count += sum(1 for f in filenames if is_junk(f))
    return count


def note_junk(root: Path) -> int:
    """Print one line when ``root`` holds junk files (which every reader skips); returns the count."""
    count = count_junk(root)
    if count:
        print(f"cnnlab: skipped {count} file(s) that archive tools or desktops add (__MACOSX/, ._*, "
              f".ipynb_checkpoints/, Thumbs.db...) in {root}", file=sys.stderr)
    return count


def to_rgb8(image, path: str | Path = "image"):
    """A PIL image converted to 8-bit RGB as a viewer shows it (see the module docstring)."""
    from PIL import Image

    mode = image.mode
    if mode in SIXTEEN_BIT_GREY:
        grey = np.asarray(image, dtype=np.float64)
        if mode == "I" and grey.max(initial=0) <= 255:  # an 8-bit image stored as 32-bit integers
            return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
        return Image.fromarray(np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        raise DataError(f"{path}: floating-point pixels (mode F) have no display range; save it as 8-bit")
    if mode in ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: cannot convert a {mode} image to RGB ({e})") from None


def read_rgb(path: str | Path):
    """Open ``path`` and return its 8-bit RGB PIL image, upright as a viewer shows it.

    Raises:
        DataError: the file is missing, not an image, truncated, or in a pixel format with no display form.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)  # (W, H) swapped for orientations 5-8
            return to_rgb8(upright, path)
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None
