import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import cifar10
from cnnlab.data.archive import safe_extract
from cnnlab.data.augment import random_crop, random_flip
from cnnlab.data.loader import TensorLoader, class_balanced_indices, split_balanced
from cnnlab.errors import DataError
from cnnlab.train.checkpoint import read_checkpoint

from conftest import tiny_cifar_arrays, write_cifar_batches, write_cifar_tree


def test_three_formats_give_the_same_tensors(cifar_batches, cifar_tree, cifar_tarball):
    (train_x, train_y), (test_x, test_y) = tiny_cifar_arrays()
    for source in (cifar_batches, cifar_batches / "cifar-10-batches-py", cifar_tree):
        data = cifar10.load(source)
        assert data.train.x.dtype == torch.uint8 and data.train.x.shape == (60, 3, 32, 32)
        assert torch.equal(data.train.y, torch.from_numpy(train_y))
        assert torch.equal(data.test.x, torch.from_numpy(test_x))  # pickles and PNGs are lossless
    from_tar = cifar10.load(cifar_tarball)
    assert from_tar.train.x.shape == (60, 3, 32, 32) and from_tar.test.x.shape == (30, 3, 32, 32)
    assert torch.equal(from_tar.test.y, torch.from_numpy(test_y))


def test_decoded_once_then_served_from_cache_until_the_source_changes(cifar_tree, monkeypatch):
    calls = []
    real = cifar10.read_tree
    monkeypatch.setattr(cifar10, "read_tree", lambda folder: calls.append(folder) or real(folder))
    cifar10.load(cifar_tree)
    cifar10.load(cifar_tree)
    assert len(calls) == 1
    image = next((cifar_tree / "test" / "cat").iterdir())
    write_cifar_tree(cifar_tree, seed=1)  # rewrite every image with other pixels
    os.utime(image, ns=(1, 1))
    changed = cifar10.load(cifar_tree)
    assert len(calls) == 2
    (_, _), (test_x, _) = tiny_cifar_arrays(seed=1)
    assert torch.equal(changed.test.x, torch.from_numpy(test_x))


def test_data_root_lookup_before_download(tmp_path, monkeypatch):
    root = write_cifar_batches(tmp_path / "root")
    monkeypatch.setenv("CNNLAB_DATA", str(root))
    assert cifar10.locate() == root / "cifar-10-batches-py"
    assert cifar10.load().train.x.shape[0] == 60


def test_offline_download_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match=r"CIFAR-10 not found in .*`data_dir` PATH"):
        cifar10.locate(root=tmp_path / "empty")


def _errors_for(tmp_path):
    cases = {}
    cases["missing folder"] = (tmp_path / "nope", "no such file or folder")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.txt").write_text("hi")
    cases["wrong layout"] = (tmp_path / "flat", "unrecognised layout")
    unknown = write_cifar_tree(tmp_path / "unknown")
    (unknown / "train" / "dragon").mkdir()
    cases["unknown class"] = (unknown, "unknown class folder.*dragon")
    missing = write_cifar_tree(tmp_path / "missing")
    for f in (missing / "test" / "ship").iterdir():
        f.unlink()
    (missing / "test" / "ship").rmdir()
    cases["missing class"] = (missing, "missing class folder.*ship")
    bad_image = write_cifar_tree(tmp_path / "badimg")
    (bad_image / "train" / "cat" / "9999.png").write_bytes(b"not a png")
    cases["unreadable image"] = (bad_image, r"9999.png: unreadable image")
    big = write_cifar_tree(tmp_path / "big")
    from PIL import Image
    Image.new("RGB", (64, 64)).save(big / "train" / "cat" / "9998.png")
    cases["wrong size"] = (big, "expected a 32x32 image")
    good = tmp_path / "good.tar.gz"
    from conftest import write_cifar_tarball
    write_cifar_tarball(good)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated archive"] = (truncated, "truncated or corrupt")
    not_archive = tmp_path / "data.zip"
    not_archive.write_bytes(b"PK")
    cases["not an archive"] = (not_archive, "not a folder or .tar")
    return cases


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    for what, (path, message) in _errors_for(tmp_path).items():
        with pytest.raises(DataError, match=message):
            cifar10.load(path)
        code = main(["cifar", "train", "--data-dir", str(path), "--epochs", "1", "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, what
        assert err[-1].startswith("cnnlab: error: ") and str(path) in err[-1], (what, err)
        assert "Traceback" not in "\n".join(err)


def _tar_with(path, name, *, data=b"x", link=None, kind=tarfile.REGTYPE):
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        if link is not None:
            info.linkname = link
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name,link,kind", [
    ("/tmp/evil-absolute.txt", None, tarfile.REGTYPE),
    ("top/../../evil-dotdot.txt", None, tarfile.REGTYPE),
    ("top/link", "../../outside", tarfile.SYMTYPE),
    ("top/abslink", "/etc/passwd", tarfile.SYMTYPE),
    ("top/hard", "../../../etc/passwd", tarfile.LNKTYPE),
])
def test_unsafe_archive_members_are_refused_and_nothing_is_written(tmp_path, name, link, kind):
    archive = _tar_with(tmp_path / "evil.tar", name, link=link, kind=kind)
    dest = tmp_path / "sandbox" / "out"
    before = set(p for p in tmp_path.rglob("*"))
    with pytest.raises(DataError, match="refusing unsafe archive member"):
        safe_extract(archive, dest)
    after = set(p for p in tmp_path.rglob("*"))
    assert after - before <= {tmp_path / "sandbox"}  # not even a partial folder is left
    assert not os.path.exists("/tmp/evil-absolute.txt")
    assert not (tmp_path.parent / "evil-dotdot.txt").exists()


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    folder = write_cifar_batches(tmp_path / "p") / "cifar-10-batches-py"

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch"):
        cifar10.load(folder)
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_that_runs_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Exploit()}, path)
    with pytest.raises(Exception, match="refusing to load"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_balanced_subsets_and_splits():
    y = torch.arange(10).repeat_interleave(50)
    idx = class_balanced_indices(y, 95, seed=0)
    counts = torch.bincount(y[idx], minlength=10)
    assert len(idx) == 95 and counts.max() - counts.min() <= 1 and len(set(idx.tolist())) == 95
    keep, held = split_balanced(y, 0.1)
    assert len(held) == 50 and torch.bincount(y[held]).tolist() == [5] * 10
    assert set(keep.tolist()).isdisjoint(held.tolist()) and len(keep) + len(held) == 500


def test_batch_augmentation():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    cropped = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert cropped.shape == x.shape
    for i in range(2):  # each image is its own window of the zero-padded original
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        assert any(torch.equal(cropped[i], padded[:, r:r + 8, c:c + 8]) for r in range(5) for c in range(5))
    flipped = random_flip(x, torch.Generator().manual_seed(0))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


def test_tensor_loader_epochs_and_ranks():
    x, y = torch.arange(10)[:, None], torch.arange(10)
    loader = TensorLoader(x, y, 4, shuffle=True, seed=1)
    first = torch.cat([b for _, b in loader])
    second = torch.cat([b for _, b in loader])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    assert len(loader) == 3
    shards = [torch.cat([b for _, b in TensorLoader(x, y, 2, shuffle=True, seed=1, rank=r, world_size=2)])
              for r in range(2)]
    assert sorted(torch.cat(shards).tolist()) == list(range(10))


def test_every_lightning_epoch_gets_a_new_order_and_augmentation_and_a_resume_replays_them():
    # Lightning stops after len(loader) batches without exhausting the iterator, and calls
    # loader.sampler.set_epoch(e) before each epoch: either way each epoch must differ.
    import lightning.pytorch as pl

    x = torch.arange(16, dtype=torch.float32).view(16, 1, 1, 1).expand(16, 1, 4, 4).contiguous()
    y = torch.arange(16)
    jitter = lambda b, g: b + torch.rand(len(b), 1, 1, 1, generator=g)  # noqa: E731  (a stand-in augmentation)
    seen = []

    class Recorder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            seen.append((self.current_epoch, batch[0].clone(), batch[1].clone()))
            return (self.w * batch[0].mean()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    loader = TensorLoader(x, y, 4, shuffle=True, drop_last=True, seed=3, transform=jitter)
    pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(Recorder(), loader)
    orders = [torch.cat([b for e, _, b in seen if e == epoch]) for epoch in range(3)]
    inputs = [torch.cat([a for e, a, _ in seen if e == epoch]) for epoch in range(3)]
    assert all(sorted(o.tolist()) == list(range(16)) for o in orders)
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[1], orders[2])
    resumed = TensorLoader(x, y, 4, shuffle=True, drop_last=True, seed=3, transform=jitter)
    resumed.set_epoch(2)
    replay = list(resumed)
    assert torch.equal(torch.cat([b for _, b in replay]), orders[2])
    assert torch.equal(torch.cat([a for a, _ in replay]), inputs[2])  # same augmentation too
