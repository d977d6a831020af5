"""Data faults users meet (issue: every machine, every fault): junk beside the data, images in every
mode Pillow opens, EXIF orientation, and notMNIST idx files unzipped by hand. Inputs are tiny and
generated here; every expected pixel is computed independently of the code under test."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import cifar10
from cnnlab.data import food101, notmnist
from cnnlab.data.food101 import decode_image
from cnnlab.data.images import count_junk, is_junk, read_rgb
from cnnlab.data.notmnist import FILES
from cnnlab.errors import DataError

from conftest import tiny_cifar_arrays, write_cifar_tree
from food_tree import make_food_tree
from notmnist_helpers import idx_bytes, tiny_letters

JUNK = ("__MACOSX", ".ipynb_checkpoints", "._0001.jpg", "Thumbs.db", "desktop.ini", ".DS_Store")


def add_junk(folder: Path) -> int:
    """Put the junk that archive tools and desktops add into ``folder``; returns the file count."""
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._train").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "notes-checkpoint.ipynb").write_text("{}")
    (folder / "._0001.jpg").write_bytes(b"\x00\x05\x16\x07 not a jpeg")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
    return 5


def test_junk_names_are_recognised_and_counted(tmp_path):
    assert all(is_junk(n) for n in JUNK)
    assert not any(is_junk(n) for n in ("train", "0001.jpg", "airplane", "food-101"))
    assert add_junk(tmp_path) == count_junk(tmp_path) == 5


def test_cifar_tarball_with_macosx_beside_the_tree(tmp_path, capsys):
    tree = write_cifar_tree(tmp_path / "src" / "cifar10-jpg")
    macosx = tmp_path / "src" / "__MACOSX" / "cifar10-jpg"
    macosx.mkdir(parents=True)
    (macosx / "._train").write_bytes(b"\x00\x05\x16\x07")
    archive = tmp_path / "cifar10.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="cifar10-jpg")
        tar.add(tmp_path / "src" / "__MACOSX", arcname="__MACOSX")
    data = cifar10.load(archive)
    (train_x, _), _ = tiny_cifar_arrays()
    assert data.train.x.shape == (len(train_x), 3, 32, 32)


def test_cifar_tree_with_junk_in_every_folder(tmp_path, capsys):
    tree = write_cifar_tree(tmp_path / "tree")
    expected = add_junk(tree / "train") + add_junk(tree / "train" / "cat") + add_junk(tree / "test" / "dog")
    data = cifar10.load(tree)
    (train_x, train_y), (test_x, _) = tiny_cifar_arrays()
    assert len(data.train.y) == len(train_y) and len(data.test.y) == len(test_x)
    assert torch.equal(torch.bincount(data.train.y), torch.bincount(torch.from_numpy(train_y)))
    err = capsys.readouterr().err
    assert f"skipped {expected} file(s)" in err and str(tree) in err and err.count("\n") == 1


def test_food_archive_with_junk(tmp_path, capsys):
    food = make_food_tree(tmp_path / "src")
    add_junk(food / "images" / "ramen")
    add_junk(food / "meta")
    (tmp_path / "src" / "__MACOSX").mkdir()
    (tmp_path / "src" / "__MACOSX" / "._food-101").write_bytes(b"\x00\x05")
    archive = tmp_path / "food.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(food, arcname="food-101")
        tar.add(tmp_path / "src" / "__MACOSX", arcname="__MACOSX")
    data = food101.load(archive, num_classes=4, image_size=32)
    assert len(data.train) == 16 and len(data.test) == 8
    assert "skipped 10 file(s)" in capsys.readouterr().err


# ---- decoding every mode to what a viewer shows -------------------------------------------------------

RGB = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [200, 100, 50]]], dtype=np.uint8)  # (2, 2, 3)


def _grey3(v) -> np.ndarray:
    return np.repeat(np.asarray(v, dtype=np.uint8)[..., None], 3, axis=-1)


def case_images():
    """(name, PIL image to save, file suffix, expected (H, W, 3) uint8, tolerance)."""
    grey = np.array([[0, 64], [128, 255]], dtype=np.uint8)
    cases = [("RGB", Image.fromarray(RGB), ".png", RGB, 0),
             ("L", Image.fromarray(grey, "L"), ".png", _grey3(grey), 0),
             ("1", Image.fromarray(grey > 100).convert("1"), ".png", _grey3(np.where(grey > 100, 255, 0)), 0)]
    palette = Image.fromarray(RGB).quantize(colors=4)
    cases.append(("P", palette, ".png", np.asarray(palette.convert("RGB")), 0))
    rgba = np.dstack([RGB, np.array([[255, 0], [128, 255]], dtype=np.uint8)])
    alpha = rgba[..., 3:].astype(float) / 255
    over_white = np.rint(RGB * alpha + 255 * (1 - alpha)).astype(np.uint8)
    cases.append(("RGBA", Image.fromarray(rgba, "RGBA"), ".png", over_white, 1))
    la = np.dstack([grey, np.array([[0, 255], [255, 255]], dtype=np.uint8)])
    cases.append(("LA", Image.fromarray(la, "LA"), ".png", _grey3(np.where(la[..., 1] == 0, 255, grey)), 0))
    sixteen = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16)
    cases.append(("I;16", Image.fromarray(sixteen), ".png", _grey3(grey), 0))
    # 1000/257 = 3.89 shows as 4 (rounded), not 3 (a shift by 8 bits) nor 255 (clipped)
    odd = np.array([[1000, 40000], [65000, 128]], dtype=np.uint16)
    cases.append(("I;16 rounding", Image.fromarray(odd), ".png", _grey3(np.array([[4, 156], [253, 0]])), 0))
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (255, 0, 0, 0))  # cyan
    cmyk.putpixel((1, 0), (0, 0, 0, 255))  # black
    cases.append(("CMYK", cmyk, ".tif", np.array([[[0, 255, 255], [0, 0, 0]]], dtype=np.uint8), 0))
    transparent_p = Image.fromarray(RGB).quantize(colors=4)
    transparent_p.info["transparency"] = int(np.asarray(transparent_p)[0, 0])
    expected_p = np.asarray(transparent_p.convert("RGB")).copy()
    expected_p[0, 0] = 255
    cases.append(("P+transparency", transparent_p, ".png", expected_p, 0))
    return cases


@pytest.mark.parametrize("case", case_images(), ids=lambda c: c[0])
def test_every_mode_decodes_to_viewer_rgb(tmp_path, case):
    name, image, suffix, expected, tol = case
    path = tmp_path / f"img{suffix}"
    save_kw = {"transparency": image.info["transparency"]} if "transparency" in image.info else {}
    image.save(path, **save_kw)
    got = np.asarray(read_rgb(path))
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= tol, (got, expected)


def _exif_jpeg(path: Path, pixels: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=100, exif=exif)


def test_exif_orientation_is_applied(tmp_path):
    # Stored 64 wide x 32 high, left half dark, right half light; orientation 6 means "rotate 90
    # degrees clockwise to display", so a viewer shows it 32 wide x 64 high, dark half on top.
    stored = np.zeros((32, 64, 3), dtype=np.uint8)
    stored[:, 32:] = 230
    path = tmp_path / "phone.jpg"
    _exif_jpeg(path, stored, orientation=6)
    shown = np.asarray(read_rgb(path))
    assert shown.shape == (64, 32, 3)
    assert shown[:32].mean() < 20 and shown[32:].mean() > 210
    # Food-101 decoding (resize + centre crop to a square) keeps it upright: dark on top.
    square = decode_image(path, 32).float()  # (3, 32, 32)
    assert square[:, :12].mean() < 30 and square[:, 20:].mean() > 200


def test_cifar_tree_applies_exif(tmp_path):
    tree = write_cifar_tree(tmp_path / "tree")
    target = sorted((tree / "train" / "cat").iterdir())[0]
    stored = np.zeros((32, 32, 3), dtype=np.uint8)
    stored[:, 16:] = 250  # right half light; orientation 8 (90 degrees counter-clockwise) puts it on top
    target.unlink()
    _exif_jpeg(target.with_suffix(".jpg"), stored, orientation=8)
    data = cifar10.load(tree)
    shown = data.train.x[data.train.y == 3][0].float()  # class 3 is cat; its first file is the new one
    assert shown[:, :14].mean() > 200 and shown[:, 18:].mean() < 40


def test_unreadable_and_undisplayable_images_name_the_file(tmp_path):
    broken = tmp_path / "broken.jpg"
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, format="JPEG")
    broken.write_bytes(buf.getvalue()[:40])
    with pytest.raises(DataError, match="broken.jpg"):
        read_rgb(broken)
    floats = tmp_path / "float.tif"
    Image.fromarray(np.ones((2, 2), dtype=np.float32), "F").save(floats)
    with pytest.raises(DataError, match="float.tif.*mode F"):
        read_rgb(floats)
    with pytest.raises(DataError, match="missing"):
        read_rgb(tmp_path / "nope.png")


def test_corrupt_image_in_a_tree_is_one_clear_line(tmp_path, capsys):
    tree = write_cifar_tree(tmp_path / "tree")
    bad = sorted((tree / "test" / "ship").iterdir())[0]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["cifar", "train", "--data-dir", str(tree), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and str(bad) in err and err.count("\n") == 1
    assert not (Path(tmp_path / "runs") / "cifar").exists() or not any((tmp_path / "runs" / "cifar").iterdir())


# ---- notMNIST idx files unzipped by hand ----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["unzipped", "mixed"])
def test_notmnist_reads_idx_files_without_gz(tmp_path, layout):
    folder = tmp_path / "notmnist"
    folder.mkdir()
    (x_train, y_train), (x_test, y_test) = tiny_letters(30, 0), tiny_letters(10, 1)
    for i, (key, array) in enumerate((("train_images", x_train), ("train_labels", y_train),
                                      ("test_images", x_test), ("test_labels", y_test))):
        data = idx_bytes(array)
        if layout == "mixed" and i % 2:
            (folder / FILES[key]).write_bytes(gzip.compress(data))
        else:
            (folder / FILES[key].removesuffix(".gz")).write_bytes(data)
    data = notmnist.load(folder)
    assert torch.equal(data.train.x[:, 0], torch.from_numpy(x_train))
    assert torch.equal(data.test.y, torch.from_numpy(y_test).long())
