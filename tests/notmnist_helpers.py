"""Tiny notMNIST stand-ins written in the real idx(.gz) format, shared by the tests/test_notmnist_*.py files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from cnnlab.data.notmnist import FILES


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file of uint8: magic 0x00 0x00 0x08 <ndim>, big-endian uint32 sizes, then the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def tiny_letters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` learnable 28x28 'letters': class k is a bright bar at row 2k (plus noise). (N, 28, 28), (N,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 28, 28))
    for i, k in enumerate(labels):
        images[i, 2 * k + 2: 2 * k + 6, 4:24] = 230
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_notmnist(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True) -> Path:
    """The four files of the notMNIST-to-MNIST repository, with tiny contents."""
    folder.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = tiny_letters(n_train, 0), tiny_letters(n_test, 1)
    for key, array in (("train_images", x_train), ("train_labels", y_train),
                       ("test_images", x_test), ("test_labels", y_test)):
        data = idx_bytes(array)
        (folder / FILES[key]).write_bytes(gzip.compress(data) if gz else data)
    return folder
