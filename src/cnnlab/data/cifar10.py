"""CIFAR-10 from any of its usual forms, decoded once into a cached uint8 tensor file.

Accepted sources (``data_dir``, or looked up in the data root before anything is downloaded):
  * a folder holding torchvision's ``cifar-10-batches-py/`` (or that folder itself);
  * an image-folder tree ``train/<class>/*.{png,jpg}`` and ``test/<class>/*``;
  * a ``.tar`` / ``.tar.gz`` of either (one top-level folder allowed), extracted safely once.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.archive import is_archive, single_top_folder
from cnnlab.data.cache import cached_tensors, materialise
from cnnlab.data.images import is_junk, note_junk, read_rgb
from cnnlab.data.splits import Dataset, Split
from cnnlab.errors import DataError
from cnnlab.paths import data_root

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
ROOT_CANDIDATES = ("cifar-10-batches-py", "cifar10-jpg.tar.gz", "cifar10-jpg", "cifar-10-python.tar.gz",
                   "cifar10.tar.gz", "cifar10.tar", "cifar10")


# ---- the two on-disk layouts ------------------------------------------------------------------------


def _find_batches(folder: Path) -> Path | None:
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if (candidate / "data_batch_1").is_file() or (candidate / "test_batch").is_file():
            return candidate
    return None


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """The official batches are pickles of dicts, lists and NumPy arrays; anything else in a pickle
    (which could run code) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            batch = _ArraysOnlyUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DataError(f"{path}: missing CIFAR-10 batch file") from None
    except Exception as e:
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def read_batches(folder: Path) -> dict[str, torch.Tensor]:
    train = [_read_pickle_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = _read_pickle_batch(folder / "test_batch")
    return {
        "train_x": torch.from_numpy(np.concatenate([x for x, _ in train])),
        "train_y": torch.from_numpy(np.concatenate([y for _, y in train])),
        "test_x": torch.from_numpy(test_x),
        "test_y": torch.from_numpy(test_y),
    }


def _find_tree(folder: Path) -> Path | None:
    folder = single_top_folder(folder) if folder.is_dir() else folder
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return folder
    return None


def _class_folders(split_dir: Path) -> dict[str, Path]:
    found = {p.name: p for p in split_dir.iterdir() if p.is_dir() and not is_junk(p.name)}
    unknown = sorted(set(found) - set(CLASSES))
    missing = [c for c in CLASSES if c not in found]
    if unknown:
        raise DataError(f"{split_dir}: unknown class folder(s) {', '.join(unknown)}; expected CIFAR-10's {', '.join(CLASSES)}")
    if missing:
        raise DataError(f"{split_dir}: missing class folder(s) {', '.join(missing)}")
    return found


def _decode_image(path: Path) -> np.ndarray:
    array = np.asarray(read_rgb(path), dtype=np.uint8)  # (H, W, 3)
    if array.shape != (32, 32, 3):
        raise DataError(f"{path}: expected a 32x32 image, got {array.shape[1]}x{array.shape[0]}")
    return array


def read_tree_split(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    folders = _class_folders(split_dir)
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        files = sorted(p for p in folders[name].iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_junk(p.name))
        if not files:
            raise DataError(f"{folders[name]}: no images (.png or .jpg) in class folder")
        images += [_decode_image(p) for p in files]
        labels += [label] * len(files)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)
    return x, torch.tensor(labels, dtype=torch.int64)


def read_tree(folder: Path) -> dict[str, torch.Tensor]:
    note_junk(folder)
    train_x, train_y = read_tree_split(folder / "train")
    test_x, test_y = read_tree_split(folder / "test")
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


# ---- finding and loading ---------------------------------------------------------------------------

EXPECTED = ("a folder holding cifar-10-batches-py/, an image tree train/<class>/ + test/<class>/, "
            "or a .tar/.tar.gz of either")


def load_source(source: Path) -> Dataset:
    """Decode ``source`` (any accepted form) once; later calls read the cached tensors.

    Raises:
        DataError: missing, corrupt or unrecognised source (naming it and what was expected).
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise DataError(f"{source}: no such file or folder (expected {EXPECTED})")
    if source.is_file() and not is_archive(source):
        raise DataError(f"{source}: not a folder or .tar/.tar.gz archive (expected {EXPECTED})")

    def build() -> dict[str, torch.Tensor]:
        folder = materialise(source)
        batches = _find_batches(folder) or _find_batches(single_top_folder(folder))
        if batches is not None:
            return read_batches(batches)
        tree = _find_tree(folder)
        if tree is not None:
            return read_tree(tree)
        raise DataError(f"{source}: unrecognised layout (expected {EXPECTED})")

    t = cached_tensors("cifar10", source, build)
    return Dataset(Split(t["train_x"], t["train_y"]), Split(t["test_x"], t["test_y"]), CLASSES, source)


def locate(data_dir: str | Path | None = None, root: str | Path | None = None) -> Path:
    """The CIFAR-10 source to use: ``data_dir`` if given, else the first accepted form in the data
    root, else torchvision's download into the data root."""
    if data_dir:
        return Path(data_dir).expanduser()
    base = data_root(root)
    for name in ROOT_CANDIDATES:
        if (base / name).exists():
            return base / name
    return download(base)


def download(base: Path) -> Path:
    from torchvision.datasets import CIFAR10

    try:
        base.mkdir(parents=True, exist_ok=True)
        CIFAR10(str(base), train=True, download=True)
    except Exception as e:  # URLError, socket errors, HTTP errors: all mean "no copy and no network"
        raise DataError(
            f"CIFAR-10 not found in {base} and the download failed ({type(e).__name__}); put a copy there "
            f"(e.g. cifar10-jpg.tar.gz or cifar-10-batches-py/), or pass `data_dir` PATH / `data_root` PATH "
            f"or set CNNLAB_DATA") from None
    return base / "cifar-10-batches-py"


def load(data_dir: str | Path | None = None, data_root: str | Path | None = None) -> Dataset:
    """CIFAR-10 as uint8 images (N, 3, 32, 32) and int64 labels: 50,000 train and 10,000 test images,
    from ``data_dir`` (any accepted form), else the data root, else torchvision's download.

    Raises:
        DataError: no data found and the download failed, or a corrupt source.
    """
    return load_source(locate(data_dir, data_root))
