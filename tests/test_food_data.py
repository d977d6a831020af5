"""Food-101 reader: official layout, first-N classes, sources (folder, archives, data root, download),
caching of decoded images, and a clear DataError for every kind of bad input."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from food_tree import CLASSES, make_food_tree, tar_tree

from cnnlab.data import food101
from cnnlab.errors import DataError


@pytest.fixture
def tree(tmp_path):
    return make_food_tree(tmp_path / "src")


def test_first_n_classes_follow_classes_txt(tree):
    data = food101.load(tree.parent, num_classes=3, image_size=24)
    assert data.classes == tuple(CLASSES[:3])  # file order, not alphabetical
    assert data.train.x.shape == (12, 3, 24, 24) and data.train.x.dtype == torch.uint8
    assert data.test.x.shape == (6, 3, 24, 24)
    assert data.train.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.val is None


def test_sources_folder_food101_folder_and_archives(tree, tmp_path):
    reference = food101.load(tree.parent, num_classes=2, image_size=16)
    for source in (tree, tar_tree(tree, tmp_path / "f.tar"), tar_tree(tree, tmp_path / "f.tar.gz")):
        data = food101.load(source, num_classes=2, image_size=16)
        assert torch.equal(data.train.x, reference.train.x), source


def test_lookup_under_data_root(tree, tmp_path, monkeypatch):
    root = tmp_path / "data-root"
    root.mkdir()
    tar_tree(tree, root / "food-101-first10.tar")
    monkeypatch.setattr(food101, "download_food101", lambda r: pytest.fail("must not download"))
    data = food101.load(num_classes=4, image_size=16)  # CNNLAB_DATA points at data-root (conftest)
    assert data.classes == tuple(CLASSES)


def test_download_failure_is_one_clear_line(monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "Food101", offline)
    with pytest.raises(DataError, match="`data_dir`") as err:
        food101.load(num_classes=2)
    assert "\n" not in str(err.value)


def test_more_classes_than_exist_names_count_and_flag(tree):
    with pytest.raises(DataError, match=r"only 4 classes .*`num_classes` 4"):
        food101.load(tree.parent)  # default is 20


@pytest.mark.parametrize("missing", ["classes.txt", "test.txt"])
def test_missing_meta_file(tree, missing):
    (tree / "meta" / missing).unlink()
    with pytest.raises(DataError, match=missing):
        food101.load(tree.parent, num_classes=2, image_size=16)


def test_unreadable_image_is_named(tree):
    bad = tree / "images" / "apple_pie" / "201.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="201.jpg: unreadable image"):
        food101.load(tree.parent, num_classes=2, image_size=16)


def test_missing_image_is_named(tree):
    (tree / "images" / "ramen" / "101.jpg").unlink()
    with pytest.raises(DataError, match="101.jpg: listed in the split file but missing"):
        food101.load(tree.parent, num_classes=1, image_size=16)


def test_class_without_images(tree):
    train = tree / "meta" / "train.txt"
    train.write_text("\n".join(l for l in train.read_text().splitlines() if not l.startswith("sushi/")))
    with pytest.raises(DataError, match="'sushi' has no images in meta/train.txt"):
        food101.load(tree.parent, num_classes=3, image_size=16)


def test_not_food101(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Food-101 data"):
        food101.load(tmp_path / "empty", num_classes=1)
    with pytest.raises(DataError, match="not found"):
        food101.load(tmp_path / "nowhere", num_classes=1)


def test_limit_and_balanced_val_split(tree):
    data = food101.load(tree.parent, num_classes=4, per_class_limit=3, val_fraction=0.25, image_size=16)
    assert len(data.test) == 4 * 2  # the limit caps each split per class; test has only 2 per class
    assert len(data.train) + len(data.val) == 4 * 3
    assert sorted(data.val.y.tolist()) == [0, 1, 2]  # 3 held out, no class twice


def test_decoded_images_are_cached(tree, monkeypatch):
    food101.load(tree.parent, num_classes=2, image_size=16)
    monkeypatch.setattr(food101, "decode_images", lambda *a, **k: pytest.fail("decoded twice"))
    food101.load(tree.parent, num_classes=2, image_size=16)  # same source, classes, size: from the cache
    with pytest.raises(BaseException, match="decoded twice"):
        food101.load(tree.parent, num_classes=2, image_size=20)  # a new size is a new cache entry


def test_a_limit_above_every_class_count_shares_the_cache_of_no_limit(tree, monkeypatch):
    food101.load(tree.parent, num_classes=2, image_size=16)
    assert food101.effective_limit(tree, ["ramen", "apple_pie"], 99) == 0  # 4 train, 2 test each
    assert food101.effective_limit(tree, ["ramen", "apple_pie"], 3) == 3   # cuts train
    assert food101.effective_limit(tree, ["ramen", "apple_pie"], 0) == 0
    monkeypatch.setattr(food101, "decode_images", lambda *a, **k: pytest.fail("decoded twice"))
    same = food101.load(tree.parent, num_classes=2, image_size=16, per_class_limit=99)  # the same images
    assert len(same.train) == 2 * 4
    with pytest.raises(BaseException, match="decoded twice"):
        food101.load(tree.parent, num_classes=2, image_size=16, per_class_limit=3)  # other images: decoded


def test_decode_images_fills_one_tensor_in_order_and_a_bad_file_is_a_data_error(tmp_path):
    food = make_food_tree(tmp_path)
    paths = sorted((food / "images").rglob("*.jpg"))[:5]
    batch = food101.decode_images(paths, 32)
    assert batch.shape == (5, 3, 32, 32) and batch.dtype == torch.uint8
    for i, p in enumerate(paths):  # each image lands in its own slot, whichever thread decoded it
        assert torch.equal(batch[i], food101.decode_image(p, 32))
    assert food101.decode_images([], 32).shape == (0, 3, 32, 32)
    with pytest.raises(DataError, match="missing"):
        food101.decode_images(paths + [tmp_path / "gone.jpg"], 32)
