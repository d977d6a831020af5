"""Food-101 in its official layout, first N classes, decoded once into uint8 tensors.

    food-101/images/<class>/<id>.jpg
    food-101/meta/classes.txt           class order; "the first N classes" follow it
    food-101/meta/{train,test}.txt      "<class>/<id>" per line: the official split

Where the data comes from, first match wins: ``data_dir`` (a folder holding ``food-101/``, the
``food-101`` folder itself, or a ``.tar``/``.tar.gz`` of it, extracted once into the cache); else
``food-101/`` or a ``food-101*.tar*`` archive under the data root; else torchvision's ``Food101``
download (about 5 GB) into the data root.

Images are decoded once per (source, classes, limit, size) into a cached uint8 tensor
(N, 3, S, S): shorter side resized to S, then center-cropped to a square. S is a bit larger than the
backbone's input (timm's ``input / crop_pct``, 256 for 224), so a center crop of S gives exactly timm's
eval preprocessing and a random crop gives train-time augmentation, both on whole batches in memory.

    from cnnlab.data import food101
    data = food101.load("../shared/data/food-101-first10.tar", num_classes=10, image_size=256)
    len(data.train), data.classes  # nothing read yet: images are read from the cache when first used
    data.train.x.shape              # (3750, 3, 256, 256) uint8, read now
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from cnnlab.data.archive import is_archive, single_top_folder
from cnnlab.data.cache import cached_tensors, materialise
from cnnlab.data.images import note_junk, read_rgb
from cnnlab.data.splits import EVAL_SEED, Dataset, Split, hold_out
from cnnlab.errors import DataError
from cnnlab.paths import data_root

DEFAULT_NUM_CLASSES = 20  # the lab asks for the first 20 classes
ARCHIVE_PATTERNS = ("food-101.tar.gz", "food-101.tgz", "food-101.tar", "food-101*.tar*")


# ---- finding the data ----------------------------------------------------------------------------


def _looks_like_food101(folder: Path) -> bool:
    return (folder / "meta").is_dir() or (folder / "images").is_dir()


def food101_folder(path: Path) -> Path:
    """The ``food-101`` folder inside ``path`` (a folder or an archive), or a DataError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: not found (give `data_dir` a folder holding food-101/ or a .tar of it)")
    if path.is_file() and not is_archive(path):
        raise DataError(f"{path}: not a folder or a .tar/.tar.gz archive of Food-101")
    folder = materialise(path)
    for candidate in (folder / "food-101", folder, single_top_folder(folder) / "food-101", single_top_folder(folder)):
        if candidate.is_dir() and _looks_like_food101(candidate):
            return candidate
    raise DataError(f"{path}: no Food-101 data inside (expected food-101/images/<class>/*.jpg and "
                    "food-101/meta/classes.txt)")


def _under_data_root(root: Path) -> Path | None:
    if (root / "food-101").is_dir():
        return root / "food-101"
    for pattern in ARCHIVE_PATTERNS:
        found = sorted(root.glob(pattern)) if root.is_dir() else []
        if found:
            return found[0]
    return None


def download_food101(root: Path) -> Path:
    """torchvision's Food101 download (about 5 GB) into ``root``; a network failure is one clear line."""
    import torchvision

    print(f"cnnlab: downloading Food-101 (about 5 GB) into {root} (once)", file=sys.stderr)
    try:
        root.mkdir(parents=True, exist_ok=True)
        torchvision.datasets.Food101(str(root), split="train", download=True)
    except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError
        raise DataError(
            f"cannot download Food-101 ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no network'}); "
            f"point cnnlab at a copy with `data_dir` PATH (a folder holding food-101/ or a .tar of it) "
            f"or put one under the data root {root}") from None
    return root / "food-101"


def locate(data_dir: str | Path | None = None, root: str | Path | None = None, *, download: bool = True) -> Path:
    """The food-101 folder to read: ``data_dir``, else one under the data root, else a download."""
    if data_dir:
        return food101_folder(Path(data_dir))
    base = data_root(root)
    found = _under_data_root(base)
    if found is not None:
        return food101_folder(found)
    if not download:
        raise DataError(f"no Food-101 under {base}; give `data_dir` PATH (a folder holding food-101/ or a .tar of it)")
    return food101_folder(download_food101(base))


# ---- reading the official metadata ---------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path} is missing: not the official Food-101 layout (food-101/meta/{path.name})")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_classes(root: Path) -> list[str]:
    classes = _read_lines(root / "meta" / "classes.txt")
    if not classes:
        raise DataError(f"{root / 'meta' / 'classes.txt'} lists no classes")
    return classes


def first_classes(classes: list[str], n: int, root: Path, fewer_ok: bool = False) -> list[str]:
    """The first ``n`` classes in classes.txt order (all of them when ``fewer_ok`` and there are fewer).

    Raises:
        DataError: ``n`` < 1, or more classes asked for than the data has (unless ``fewer_ok``).
    """
    if n < 1:
        raise DataError(f"`num_classes` must be at least 1, got {n}")
    if n > len(classes) and not fewer_ok:
        raise DataError(f"{root} has only {len(classes)} classes ({classes[0]} ... {classes[-1]}), "
                        f"fewer than the {n} asked for; use `num_classes` {len(classes)} (or fewer)")
    return classes[:n]


def split_files(root: Path, split: str, classes: list[str], per_class_limit: int = 0) -> tuple[list[Path], list[int]]:
    """Image paths and labels of ``split`` restricted to ``classes``, in the order meta lists them."""
    label_of = {name: i for i, name in enumerate(classes)}
    per_class: dict[str, list[str]] = {name: [] for name in classes}
    for entry in _read_lines(root / "meta" / f"{split}.txt"):
        name = entry.split("/", 1)[0]
        if name in per_class:
            per_class[name].append(entry)
    empty = [name for name, entries in per_class.items() if not entries]
    if empty:
        raise DataError(f"{root}: class {empty[0]!r} has no images in meta/{split}.txt")
    paths, labels = [], []
    for name, entries in per_class.items():
        kept = entries[:per_class_limit] if per_class_limit > 0 else entries
        paths += [root / "images" / f"{entry}.jpg" for entry in kept]
        labels += [label_of[name]] * len(kept)
    return paths, labels


def effective_limit(root: Path, classes: list[str], per_class_limit: int, splits: tuple[str, ...] = ("train", "test")) -> int:
    """``per_class_limit`` if it leaves out an image of some class in ``splits``, else 0: a limit above
    every class's count draws the very images of no limit, so caches are keyed by this value and such
    runs share their decoded images and features."""
    if per_class_limit <= 0:
        return 0
    for split in splits:
        if max(Counter(split_files(root, split, classes)[1]).values()) > per_class_limit:
            return per_class_limit
    return 0


# ---- decoding ------------------------------------------------------------------------------------


def decode_image(path: Path, size: int, interpolation: str = "bicubic") -> torch.Tensor:
    """One image -> (3, size, size) uint8: shorter side resized to ``size``, then center-cropped.

    Uses torchvision's resize/center_crop on PIL images, the same calls timm's eval transform makes,
    so cached images match timm's preprocessing.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    if not Path(path).is_file():
        raise DataError(f"{path}: listed in the split file but missing")
    rgb = read_rgb(path)  # upright (EXIF), 8-bit RGB
    resized = TF.resize(rgb, size, interpolation=InterpolationMode(interpolation))
    return TF.pil_to_tensor(TF.center_crop(resized, size))  # (3, size, size) uint8


def decode_images(paths: list[Path], size: int, interpolation: str = "bicubic") -> torch.Tensor:
    """(N, 3, size, size) uint8; threads, because PIL releases the GIL while decoding JPEGs. Each image
    is written into the one output tensor as it is decoded (stacking a list of them held both at once)."""
    out = torch.empty(len(paths), 3, size, size, dtype=torch.uint8)

    def put(i: int) -> None:
        out[i] = decode_image(paths[i], size, interpolation)

    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        for _ in pool.map(put, range(len(paths))):  # re-raises a worker's DataError here
            pass
    return out


def _decoded_split(root: Path, split: str, classes: list[str], per_class_limit: int,
                   size: int, interpolation: str) -> Split:
    paths, labels = split_files(root, split, classes, per_class_limit)

    def build() -> dict[str, torch.Tensor]:
        if split == "train":
            note_junk(root)
        print(f"cnnlab: decoding {len(paths)} Food-101 {split} images at {size} px (once; cached)", file=sys.stderr)
        return {"x": decode_images(paths, size, interpolation), "y": torch.tensor(labels, dtype=torch.int64)}

    limit = effective_limit(root, classes, per_class_limit, (split,))
    # Memory-mapped, its images read when first used: a frozen backbone with cached features never does.
    data = cached_tensors("food101", root, build, split, tuple(classes), limit, size, interpolation, mmap=True)
    return Split.rows_of(data["x"], data["y"])


def load(data_dir: str | Path | None = None, data_root: str | Path | None = None, *,
         num_classes: int = DEFAULT_NUM_CLASSES, per_class_limit: int = 0, val_fraction: float = 0.0,
         image_size: int = 256, interpolation: str = "bicubic",
         download: bool = True, fewer_ok: bool = False, eval_seed: int = EVAL_SEED) -> Dataset:
    """The first ``num_classes`` classes (all there are when ``fewer_ok`` and there are fewer), official
    train/test split, optional class-balanced val split (``val_fraction`` of train, held out of train,
    drawn by ``eval_seed``),
    each split at most ``per_class_limit`` per class; images uint8 (N, 3, image_size, image_size), the
    shorter side resized with ``interpolation`` and center-cropped. ``source`` is the food-101 folder read.

    Raises:
        DataError: no data found, a bad layout or image, or a parameter out of range (named).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"`val_fraction` must be in [0, 1), got {val_fraction}")
    folder = locate(data_dir, data_root, download=download)
    classes = first_classes(read_classes(folder), num_classes, folder, fewer_ok)
    train = _decoded_split(folder, "train", classes, per_class_limit, image_size, interpolation)
    test = _decoded_split(folder, "test", classes, per_class_limit, image_size, interpolation)
    val = None
    if val_fraction > 0:
        train, val = hold_out(train, val_fraction, eval_seed)
    return Dataset(train, test, tuple(classes), folder, val)
