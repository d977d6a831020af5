"""notMNIST (letters A-J, 28x28 grey) read from the four idx files of the notMNIST-to-MNIST repository.

Where the files are looked for, first match wins:
``data_dir PATH`` (and nowhere else when it is given), ``<data root>/notmnist/``, ``<data root>/``
(data root: ``data_root``, ``$CNNLAB_DATA`` or ``~/.cache/cnnlab``),
then ``<cache>/notmnist/``, which is where a download lands. Only when none holds the four files is the
GitHub copy downloaded (once); offline, that is a ``DataError`` saying to pass ``data_dir``.

Every file is checked (gzip stream complete, idx magic number, dtype, image size, image/label counts
and label range); a bad one is a ``DataError`` that names it. Decoded tensors are cached on disk
(``cached_tensors``) and in memory, so a sweep of ten runs decodes once.

    from cnnlab.data import notmnist
    data = notmnist.load("../shared/data/notmnist")  # data.train.x: (8000, 1, 28, 28) uint8
"""

from __future__ import annotations

import gzip
import shutil
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import torch

from cnnlab.data.cache import cached_tensors, fingerprint
from cnnlab.data.splits import Dataset, Split
from cnnlab.errors import DataError
from cnnlab.paths import cache_root, data_root

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
URL_BASE = "https://raw.githubusercontent.com/davidflanagan/notMNIST-to-MNIST/master/"
CLASSES = tuple("ABCDEFGHIJ")
IMAGE_SIZE = 28
IDX_UINT8 = 0x08  # idx type code of unsigned bytes, the only one MNIST-style files use
DOWNLOAD_TIMEOUT_S = 30


# ---- reading one idx file -------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """The file's (decompressed) bytes; a gzip that is cut short or damaged is a DataError."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: damaged or truncated gzip file ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def read_idx(path: str | Path, ndim: int) -> torch.Tensor:
    """Decode an idx file of unsigned bytes with ``ndim`` dimensions (3 for images, 1 for labels)."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an idx file (bad magic number {data[:4].hex() or 'none'})")
    if data[2] != IDX_UINT8 or data[3] != ndim:
        raise DataError(f"{path}: expected an idx file of uint8 with {ndim} dimension(s), "
                        f"got type 0x{data[2]:02x} with {data[3]} dimension(s)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated idx header ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])  # big-endian uint32 sizes
    expected = header + _prod(shape)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: {len(data)} bytes for shape {tuple(shape)}, expected {expected}")
    flat = torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)
    return flat.reshape(shape)


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _check_split(images: torch.Tensor, labels: torch.Tensor, image_file: Path, label_file: Path) -> None:
    if tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{image_file}: images are {tuple(images.shape[1:])}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(CLASSES):
        raise DataError(f"{label_file}: label {int(labels.max())} is outside 0..{len(CLASSES) - 1}")


def read_folder(folder: Path) -> dict[str, torch.Tensor]:
    """The four files of ``folder`` decoded and cross-checked, as a dict of tensors."""
    paths = {key: file_in(folder, key) or folder / name for key, name in FILES.items()}
    out: dict[str, torch.Tensor] = {}
    for split in ("train", "test"):
        image_file, label_file = paths[f"{split}_images"], paths[f"{split}_labels"]
        images, labels = read_idx(image_file, ndim=3), read_idx(label_file, ndim=1)
        _check_split(images, labels, image_file, label_file)
        out[f"x_{split}"] = images.unsqueeze(1).contiguous()  # (N, 28, 28) -> (N, 1, 28, 28)
        out[f"y_{split}"] = labels.long()
    return out


# ---- finding (or downloading) the files ------------------------------------------------------------


def file_in(folder: Path, key: str) -> Path | None:
    """The file ``FILES[key]`` in ``folder``, gzipped or unzipped by hand (name without ``.gz``)."""
    for name in (FILES[key], FILES[key].removesuffix(".gz")):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing(folder: Path) -> list[str]:
    return [name for key, name in FILES.items() if file_in(folder, key) is None]


def candidate_folders(root: str | Path | None = None) -> list[Path]:
    root = data_root(root)
    return [root / "notmnist", root, cache_root() / "notmnist"]


def download(dest: Path) -> Path:
    """Fetch the four files from GitHub into ``dest`` (skipping those already there)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in _missing(dest):
        url = URL_BASE + name
        tmp = dest / (name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as e:
            tmp.unlink(missing_ok=True)
            reason = getattr(e, "reason", None) or e
            raise DataError(f"notMNIST not found locally and could not be downloaded from {url} ({reason}); "
                            f"pass `data_dir` PATH to a folder with {', '.join(FILES.values())}") from None
        tmp.replace(dest / name)  # only complete files get the real name
    return dest


def find_folder(data_dir: str | Path | None = None, data_root_dir: str | Path | None = None, *,
                allow_download: bool = True) -> Path:
    """The folder holding the four files (see the module docstring for the search order)."""
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"`data_dir` {folder}: no such folder")
        missing = _missing(folder)
        if missing:
            raise DataError(f"`data_dir` {folder}: missing {', '.join(missing)} (gzipped or not)")
        return folder
    candidates = candidate_folders(data_root_dir)
    for folder in candidates:
        if folder.is_dir() and not _missing(folder):
            return folder
    if not allow_download:
        raise DataError(f"notMNIST not found in {', '.join(map(str, candidates))}")
    return download(cache_root() / "notmnist")


_MEMORY: dict[str, Dataset] = {}


def load(data_dir: str | Path | None = None, data_root: str | Path | None = None, *,
         download: bool = True) -> Dataset:
    """notMNIST (letters A-J) as uint8 images (N, 1, 28, 28) in 0..255 and int64 labels in 0..9, decoded
    once per source version (see the module docstring for where it is looked up).

    Raises:
        DataError: files missing, truncated or inconsistent, or not found and not downloadable.
    """
    folder = find_folder(data_dir, data_root, allow_download=download).resolve()
    # Fingerprint the four files only: the folder may be the whole data root, holding gigabytes.
    paths = [file_in(folder, key) for key in FILES]
    versions = tuple(fingerprint(p) for p in paths)
    key = f"{folder}|{versions}"
    if key not in _MEMORY:
        t = cached_tensors("notmnist", paths[0], lambda: read_folder(folder), versions)
        _MEMORY[key] = Dataset(Split(t["x_train"], t["y_train"]), Split(t["x_test"], t["y_test"]), CLASSES, folder,
                               known_fingerprint="-".join(versions))
    return _MEMORY[key]


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 0..1 (the autoencoders' pixel scale)."""
    return images.float().div_(255.0)
