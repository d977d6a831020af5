"""notMNIST idx reading, file lookup, download failure, and the denoising noise."""

from __future__ import annotations

import gzip
import urllib.error

import numpy as np
import pytest
import torch

from cnnlab.data import notmnist
from cnnlab.data.noise import add_noise, noisy_copy, parse_noise, NoiseTransform
from cnnlab.data.notmnist import FILES, read_idx
from cnnlab.errors import CnnlabError, DataError
from notmnist_helpers import idx_bytes, tiny_letters, write_notmnist


# ---- reading --------------------------------------------------------------------------------------


def test_reads_the_four_files(tmp_path):
    folder = write_notmnist(tmp_path / "nm", n_train=30, n_test=10)
    data = notmnist.load(folder)
    assert data.train.x.shape == (30, 1, 28, 28) and data.train.x.dtype == torch.uint8
    assert data.test.x.shape == (10, 1, 28, 28)
    assert data.train.y.dtype == torch.int64 and data.train.y.tolist() == [i % 10 for i in range(30)]
    expected, _ = tiny_letters(30, 0)
    assert np.array_equal(data.train.x[:, 0].numpy(), expected)
    assert data.classes[0] == "A" and len(data.classes) == 10


def test_plain_idx_without_gzip_is_read_too(tmp_path):
    folder = write_notmnist(tmp_path / "nm", n_train=10, n_test=10, gz=False)
    assert notmnist.load(folder).test.x.shape == (10, 1, 28, 28)


def test_second_load_comes_from_memory(tmp_path):
    folder = write_notmnist(tmp_path / "nm", n_train=10, n_test=10)
    assert notmnist.load(folder) is notmnist.load(folder)


def test_truncated_gzip_names_the_file(tmp_path):
    folder = write_notmnist(tmp_path / "nm")
    path = folder / FILES["train_images"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*truncated"):
        notmnist.load(folder)


def test_truncated_payload_names_the_file(tmp_path):
    folder = write_notmnist(tmp_path / "nm")
    path = folder / FILES["test_images"]
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: truncated"):
        notmnist.load(folder)


def test_foreign_file_is_refused(tmp_path):
    folder = write_notmnist(tmp_path / "nm")
    (folder / FILES["train_labels"]).write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: not an idx file"):
        notmnist.load(folder)


def test_images_where_labels_belong_are_refused(tmp_path):
    folder = write_notmnist(tmp_path / "nm")
    images = (folder / FILES["train_images"]).read_bytes()
    (folder / FILES["train_labels"]).write_bytes(images)
    with pytest.raises(DataError, match="train-labels.*1 dimension"):
        notmnist.load(folder)


def test_count_mismatch_and_wrong_size_are_refused(tmp_path):
    folder = write_notmnist(tmp_path / "nm", n_train=20)
    (folder / FILES["train_labels"]).write_bytes(gzip.compress(idx_bytes(np.zeros(19))))
    with pytest.raises(DataError, match="20 images but .* 19 labels"):
        notmnist.load(folder)
    (folder / FILES["train_labels"]).write_bytes(gzip.compress(idx_bytes(np.zeros(20))))
    (folder / FILES["train_images"]).write_bytes(gzip.compress(idx_bytes(np.zeros((20, 32, 32)))))
    with pytest.raises(DataError, match="expected 28x28"):
        notmnist.load(folder)


def test_label_out_of_range(tmp_path):
    folder = write_notmnist(tmp_path / "nm", n_test=10)
    (folder / FILES["test_labels"]).write_bytes(gzip.compress(idx_bytes(np.full(10, 12))))
    with pytest.raises(DataError, match="label 12"):
        notmnist.load(folder)


def test_read_idx_shape(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(np.arange(24).reshape(2, 3, 4)))
    assert read_idx(path, ndim=3).tolist() == np.arange(24).reshape(2, 3, 4).tolist()


# ---- finding the files ----------------------------------------------------------------------------


def test_data_dir_missing_files_are_listed(tmp_path):
    folder = write_notmnist(tmp_path / "nm")
    (folder / FILES["test_labels"]).unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte.gz"):
        notmnist.load(folder)
    with pytest.raises(DataError, match="no such folder"):
        notmnist.load(tmp_path / "nowhere")


def test_found_under_data_root_notmnist(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_notmnist(root / "notmnist", n_train=10, n_test=10)
    monkeypatch.setenv("CNNLAB_DATA", str(root))
    assert notmnist.load().source == (root / "notmnist").resolve()


def test_offline_download_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(notmnist.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="could not be downloaded.*`data_dir`"):
        notmnist.load()


def test_download_lands_in_the_cache(tmp_path, monkeypatch):
    source = write_notmnist(tmp_path / "github")

    def fake_urlopen(url, timeout):
        return open(source / url.rsplit("/", 1)[1], "rb")

    monkeypatch.setattr(notmnist.urllib.request, "urlopen", fake_urlopen)
    data = notmnist.load()
    assert data.source == (tmp_path / "cache" / "notmnist").resolve()
    assert len(data.train.x) == 60


# ---- noise ----------------------------------------------------------------------------------------


def test_parse_noise():
    assert parse_noise("gaussian:0.5").amount == 0.5
    assert str(parse_noise("saltpepper:0.1")) == "saltpepper:0.1"
    for bad in ("gaussian", "gaussian:lots", "saltpepper:1.5", "gaussian:-1", "pink:0.1"):
        with pytest.raises(CnnlabError):
            parse_noise(bad)


def test_gaussian_noise_is_clipped_seeded_and_leaves_input_alone():
    x = torch.rand(16, 1, 28, 28)
    before = x.clone()
    noisy = noisy_copy(x, "gaussian:0.5", seed=3)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert (noisy == 0).any() and (noisy == 1).any()  # factor 0.5 pushes pixels past both ends
    assert torch.equal(noisy, noisy_copy(x, "gaussian:0.5", seed=3))
    assert not torch.equal(noisy, noisy_copy(x, "gaussian:0.5", seed=4))
    assert torch.equal(x, before)
    assert 0.2 < (noisy - x).abs().mean() < 0.4  # E|0.5 N(0,1)| = 0.4 before clipping


def test_salt_and_pepper_fraction():
    x = torch.full((64, 1, 28, 28), 0.5)
    noisy = add_noise(x, "saltpepper:0.2", torch.Generator().manual_seed(0))
    changed = noisy != 0.5
    assert abs(changed.float().mean().item() - 0.2) < 0.02
    assert set(noisy[changed].unique().tolist()) == {0.0, 1.0}


def test_noise_transform_gives_fresh_noise_per_epoch():
    from cnnlab.data.loader import TensorLoader

    x = (torch.arange(8.0) / 10).view(8, 1, 1, 1).expand(8, 1, 28, 28)  # image i is all i/10
    loader = TensorLoader(x, x, 8, shuffle=True, transform=NoiseTransform("gaussian:0.5"), seed=0)
    (noisy1, clean1), = list(loader)
    (noisy2, clean2), = list(loader)
    by_image1, by_image2 = noisy1[clean1[:, 0, 0, 0].argsort()], noisy2[clean2[:, 0, 0, 0].argsort()]
    assert not torch.equal(by_image1, by_image2)
    assert noisy1.min() >= 0 and noisy1.max() <= 1
