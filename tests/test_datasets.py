"""One dataset interface: every dataset module's ``load(data_dir, data_root, ...)`` returns the same
``Dataset`` of ``Split``s, and one ``subset`` draws class-balanced parts of any of them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
from food_tree import make_food_tree
from notmnist_helpers import write_notmnist

from cnnlab.data import cifar10, food101, notmnist
from cnnlab.data.splits import Dataset, Split, hold_out, subset


@pytest.fixture
def datasets(cifar_tree, tmp_path):
    return {
        "cifar10": cifar10.load(cifar_tree),
        "food101": food101.load(make_food_tree(tmp_path / "food").parent, num_classes=3, image_size=16),
        "notmnist": notmnist.load(write_notmnist(tmp_path / "notmnist")),
    }


def test_every_load_returns_one_container(datasets):
    for name, data in datasets.items():
        assert isinstance(data, Dataset) and isinstance(data.train, Split) and isinstance(data.test, Split), name
        assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64, name
        assert len(data.train.x) == len(data.train) > 0 and len(data.test) > 0, name
        assert isinstance(data.classes, tuple) and int(data.train.y.max()) < len(data.classes), name
        assert Path(data.source).exists() and data.fingerprint, name
        with pytest.raises(KeyError, match="no 'val' split"):
            data.split("val")


def test_every_load_takes_the_same_leading_parameters():
    for module in (cifar10, food101, notmnist):
        assert list(inspect.signature(module.load).parameters)[:2] == ["data_dir", "data_root"], module


def test_subset_is_class_balanced_reproducible_and_whole_when_asked_for_all(datasets):
    train = datasets["cifar10"].train
    part = subset(train, 20, seed=3)
    assert len(part) == 20 and torch.bincount(part.y).tolist() == [2] * 10
    assert torch.equal(part.x, subset(train, 20, seed=3).x) and not torch.equal(part.y, subset(train, 20, seed=4).y)
    assert subset(train, 0) is train and subset(train, len(train) + 5) is train
    kept, held = hold_out(train, 0.5, seed=0)
    assert len(kept) + len(held) == len(train) and torch.bincount(held.y).tolist() == [3] * 10


def test_evaluation_subsets_do_not_follow_the_run_seed(datasets):
    """Each seed of a comparison trains on its own subset but is scored on the same test images."""
    from cnnlab.data.splits import subsets

    a, b = (subsets(datasets["cifar10"], limit_train=20, limit_test=10, seed=s) for s in (0, 1))
    assert torch.equal(a.test.x, b.test.x) and not torch.equal(a.train.y, b.train.y)


def test_data_errors_name_parameters_not_flags():
    """The data layer names its parameters (`data_dir`); the command line turns them into flags."""
    root = Path(__file__).parents[1] / "src" / "cnnlab" / "data"
    flags = [f"{p.name}: {line.strip()}" for p in root.glob("*.py") for line in p.read_text().splitlines()
             if "Error(" in line and re.search(r"--[a-z]", line)]
    assert not flags, flags


def test_rows_of_reads_the_images_only_when_used_and_takes_lazily():
    source = torch.arange(10 * 2).reshape(10, 2)  # 10 "images" of 2 values
    labels = torch.arange(10) % 2
    split = Split.rows_of(source, labels)
    kept, held = hold_out(split, 0.2, seed=0)
    assert not kept.is_read and not held.is_read  # drawing splits reads nothing
    part = subset(kept, 4, seed=1)
    assert not part.is_read and len(part) == 4
    rows = part.x  # the rows, copied out now: each label still beside its own image
    assert part.is_read and torch.equal(rows[:, 0] // 2 % 2, part.y)
    assert not kept.is_read  # reading a part leaves the others as they were
    assert torch.equal(kept.x[:, 0] // 2 % 2, kept.y) and len(set(kept.x[:, 0].tolist()) & set(held.x[:, 0].tolist())) == 0
    assert Split.rows_of(source, labels).x is source  # all rows: the source itself, no copy
    assert torch.equal(split.take(labels == 1).x, source[1::2])  # a boolean mask takes those rows
    with pytest.raises(ValueError, match="3 rows of images but 10 labels"):
        Split.rows_of(source, labels, torch.tensor([0, 1, 2]))


def test_food_images_are_not_read_by_loading(tmp_path, monkeypatch):
    real_load, mapped = torch.load, []

    def recording_load(*args, **kwargs):
        mapped.append(kwargs.get("mmap", False))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    food = make_food_tree(tmp_path / "food")
    built = food101.load(food, num_classes=3, image_size=16, val_fraction=0.25)  # decoded now
    again = food101.load(food, num_classes=3, image_size=16, val_fraction=0.25)  # from the cache
    for data in (built, again):
        assert not any(s.is_read for s in (data.train, data.val, data.test))
    assert mapped and all(mapped)  # every cache file, built now or found, is read memory-mapped
    assert torch.equal(built.train.x, again.train.x) and torch.equal(built.val.y, again.val.y)
    assert again.train.x.dtype == torch.uint8 and again.train.x.shape[1:] == (3, 16, 16)


def test_an_autoencoders_loader_gathers_its_images_once_and_noise_reaches_the_input_only():
    from cnnlab.data.loader import TensorLoader

    x = torch.arange(10.0).view(10, 1, 1, 1)
    batches = list(TensorLoader(x, x, 4, shuffle=True))
    assert all(xb is yb for xb, yb in batches)  # targets are the inputs: one gather serves both
    assert torch.cat([xb for xb, _ in batches]).flatten().sort().values.tolist() == list(range(10))
    noisy = list(TensorLoader(x, x, 4, shuffle=True, transform=lambda b, g: b + 100))
    assert all(torch.equal(xb, yb + 100) for xb, yb in noisy)  # the target stays clean
    assert torch.cat([yb for _, yb in noisy]).flatten().sort().values.tolist() == list(range(10))
    labelled = list(TensorLoader(x, torch.arange(10), 4))
    assert all(torch.equal(xb.flatten(), yb.float()) for xb, yb in labelled)  # other targets: their own rows


def test_loaders_and_extraction_read_a_lazy_split_a_batch_at_a_time():
    from cnnlab.data.loader import TensorLoader
    from cnnlab.train.inference import in_batches

    split = Split.rows_of(torch.arange(20).reshape(10, 2), torch.arange(10)).take(torch.tensor([7, 2, 5]))
    source, rows = split.rows()
    batches = list(TensorLoader(source, split.y, 2, rows=rows))
    assert [x[:, 0].tolist() for x, _ in batches] == [[14, 4], [10]]
    assert [y.tolist() for _, y in batches] == [[7, 2], [5]]  # each label beside its own image
    assert [x[:, 0].tolist() for x in in_batches(source, 2, rows=rows)] == [[14, 4], [10]]
    assert not split.is_read  # nothing was copied out whole
    assert sorted(y for _, ys in TensorLoader(source, split.y, 2, rows=rows, shuffle=True) for y in ys.tolist()) == [2, 5, 7]
    with pytest.raises(ValueError, match="3 rows but y has 2"):
        TensorLoader(source, split.y[:2], 2, rows=rows)
