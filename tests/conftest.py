"""Shared fixtures: every test gets its own cache, runs and data folders, and tiny datasets are
written in the real on-disk formats."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """No test reads or writes the user's ~/.cache/cnnlab or ./runs."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "data-root"))
    monkeypatch.delenv("CNNLAB_RUN_DIR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One prepared-data cache for the real-data tests of a session: CIFAR-10's 60,000 JPEGs are
    decoded once, not once per test."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture
def real_data_cache(real_cache, monkeypatch) -> Path:
    monkeypatch.setenv("CNNLAB_CACHE", str(real_cache))
    return real_cache


def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("real data ../shared/data is absent")
    return SHARED_DATA


def tiny_cifar_arrays(per_class_train: int = 6, per_class_test: int = 3, seed: int = 0):
    """Learnable tiny CIFAR: each class has its own colour plus noise. Returns uint8 (N, 3, 32, 32)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(10, 3))

    def make(per_class):
        labels = np.repeat(np.arange(10), per_class)
        images = palette[labels][:, :, None, None] + rng.normal(0, 25, size=(len(labels), 3, 32, 32))
        return np.clip(images, 0, 255).astype(np.uint8), labels

    return make(per_class_train), make(per_class_test)


def write_cifar_batches(root: Path, **kw) -> Path:
    """torchvision's ``cifar-10-batches-py/``: five training pickles and one test pickle."""
    (train_x, train_y), (test_x, test_y) = tiny_cifar_arrays(**kw)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    parts = np.array_split(np.arange(len(train_y)), 5)
    for i, idx in enumerate(parts, start=1):
        batch = {b"data": train_x[idx].reshape(len(idx), -1), b"labels": train_y[idx].tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": test_x.reshape(len(test_y), -1),
                                                       b"labels": test_y.tolist()}))
    return root


def write_cifar_tree(root: Path, suffix: str = ".png", **kw) -> Path:
    from PIL import Image

    (train_x, train_y), (test_x, test_y) = tiny_cifar_arrays(**kw)
    for split, xs, ys in (("train", train_x, train_y), ("test", test_x, test_y)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            folder = root / split / CIFAR_CLASSES[y]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x.transpose(1, 2, 0)).save(folder / f"{i:04d}{suffix}")
    return root


def write_cifar_tarball(path: Path, **kw) -> Path:
    tree = write_cifar_tree(path.parent / "tree-src" / "cifar10-jpg", **kw)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree, arcname="cifar10-jpg")
    return path


@pytest.fixture
def cifar_tree(tmp_path) -> Path:
    return write_cifar_tree(tmp_path / "cifar-tree")


@pytest.fixture
def cifar_batches(tmp_path) -> Path:
    return write_cifar_batches(tmp_path / "cifar-pickles")


@pytest.fixture
def cifar_tarball(tmp_path) -> Path:
    return write_cifar_tarball(tmp_path / "cifar10-jpg.tar.gz")
