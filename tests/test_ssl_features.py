"""Exercise 4 f) and g) measured: the SimCLR run learns, and the feature protocol treats every extractor
alike (the same splits, the same labelled subsets, C chosen on val, test scored once)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import build
from cnnlab.experiments.configs import FeaturesConfig, SslConfig
from cnnlab.errors import ConfigError
from cnnlab.experiments.notmnist_features import labelled, narrowed, probe_rows, train_ssl

from notmnist_helpers import write_notmnist

QUIET = ["--no-progress", "--logger", "none"]


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_notmnist(tmp_path / "tiny-notmnist", n_train=100, n_test=40)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_the_contrastive_loss_falls(tiny, precision):
    run = train_ssl(build(SslConfig, data_dir=str(tiny), epochs=30, batch_size=15, precision=precision,
                          progress=False, logger="none"))
    s = json.loads((run / "summary.json").read_text())
    assert s["kind"] == "ssl" and s["epochs"] == 30 and "no flips" in s["augmentations"]
    # Ten classes of near-identical bars leave many look-alike negatives, so the loss has a high floor: with
    # 12 epochs of batch 30 it ended at 0.85x its first epoch, too near 0.9x; 30 epochs of batch 15 (six
    # steps an epoch) end near 0.81x in both precisions, a clear margin under 0.9x.
    assert s["loss_last"] < 0.9 * s["loss_first"], (s["loss_first"], s["loss_last"])
    assert s["train_images"] == 90  # val (10%) held out: the probes choose their settings on letters it never saw


def test_every_extractor_gets_the_same_labelled_subsets_and_c_is_chosen_on_val():
    y = torch.arange(10).repeat(30)
    a, b = labelled(y, 5, seed=0), labelled(y, 5, seed=0)
    assert torch.equal(a, b) and torch.bincount(y[a]).tolist() == [5] * 10
    assert len(labelled(y, 0, seed=0)) == 300  # 0: every label
    rng = np.random.default_rng(0)
    feats = {s: rng.normal(size=(n, 4)) for s, n in (("train", 300), ("val", 50), ("test", 50))}
    labels = {"train": y.numpy(), "val": np.arange(50) % 10, "test": np.arange(50) % 10}
    for split in feats:  # class k shifted by k along the first feature: separable
        feats[split][:, 0] += 3 * labels[split]
    grids = {"logreg": [0.01, 1.0], "svm": [1.0, 10.0]}
    rows = probe_rows("toy", feats, labels, [5, 0], {5: a, 0: labelled(y, 0, 0)}, grids)
    assert [(r["budget"], r["probe"]) for r in rows] == [("5", "logreg"), ("5", "svm"), ("all", "logreg"), ("all", "svm")]
    assert all(r["C"] in grids[r["probe"]] and r["test_low"] <= r["test_acc"] <= r["test_high"] for r in rows)
    assert rows[2]["test_acc"] > 0.5  # learnable, so the protocol is not scoring noise


def test_wide_features_are_reduced_on_train_alone_and_narrow_ones_kept():
    rng = np.random.default_rng(0)
    feats = {s: rng.normal(size=(n, 40)).astype(np.float32) for s, n in (("train", 60), ("val", 20), ("test", 20))}
    assert narrowed(feats, 40, seed=0) is feats
    small = narrowed(feats, 5, seed=0)
    assert {s: x.shape for s, x in small.items()} == {"train": (60, 5), "val": (20, 5), "test": (20, 5)}
    assert narrowed({k: v[:, :30] for k, v in feats.items()}, 25, 0)["val"].shape == (20, 25)
    few = narrowed({"train": feats["train"][:8], "test": feats["test"]}, 20, seed=0)  # 8 rows: 8 components at most
    assert few["train"].shape == (8, 8) and few["test"].shape == (20, 8)
    moved = dict(feats, test=feats["test"] + 100.0)  # the test split does not move the fitted components
    assert np.allclose(narrowed(moved, 5, seed=0)["train"], small["train"])


@pytest.mark.parametrize("key, value", [("logreg_c", []), ("svm_c", [0.0]), ("max_dims", 0)])
def test_features_config_refuses_empty_grids_and_widths(key, value):
    with pytest.raises(ConfigError, match=key):
        build(FeaturesConfig, **{key: value})


def test_features_command_probes_each_extractor_alike(tiny, tmp_path, capsys):
    assert main(["notmnist", "ae", "--data-dir", str(tiny), "--epochs", "2", "--code-dim", "8", *QUIET]) == 0
    assert main(["notmnist", "ae", "--data-dir", str(tiny), "--epochs", "1", "--code-dim", "4", *QUIET]) == 0  # newer
    assert main(["notmnist", "ssl", "--data-dir", str(tiny), "--epochs", "2", "--batch-size", "30", *QUIET]) == 0
    ssl_run = next((tmp_path / "runs" / "notmnist").glob("simclr*"))
    # the encoder the features come from is the run's best.ckpt, as for every run: its last epoch's weights
    best, last = (torch.load(ssl_run / "checkpoints" / f"{n}.ckpt", weights_only=True)["state_dict"] for n in ("best", "last"))
    assert best.keys() == last.keys() and all(torch.equal(best[k], last[k]) for k in best)
    assert json.loads((ssl_run / "summary.json").read_text())["checkpoint"].startswith("best.ckpt")
    assert main(["notmnist", "features", "--data-dir", str(tiny), "--extractors", "raw,pca,ae,ssl,random", "--budgets", "2,0",
                 "--tsne-points", "30", "--logreg-c", "0.1,1", "--svm-c", "1", "--max-dims", "64", "--code-dim", "8",
                 "--no-progress"]) == 0
    run = tmp_path / "runs" / "notmnist" / "features"
    s = json.loads((run / "summary.json").read_text())
    assert {r["features"] for r in s["rows"]} == {"raw", "pca", "ae", "ssl", "random"}
    assert {(r["budget"], r["labels_per_class"]) for r in s["rows"]} == {("2", 2), ("all", 9)}
    dims = {r["features"]: (r["dims"], r["dims_probed"]) for r in s["rows"]}
    assert dims["raw"] == (784, 64) and dims["ae"] == (8, 8)  # only features wider than --max-dims are reduced
    assert dims["pca"] == (8, 8) and "dense AE's 8-value code" in s["origins"]["ae"]  # not the newer 4-value AE
    assert (s["train_images"], s["val_images"], s["test_images"]) == (90, 10, 40)
    for name in ("features.md", "features.csv", "features.png", "tsne.png"):
        assert (run / name).is_file(), name
    assert main(["notmnist", "features", "--data-dir", str(tiny), "--extractors", "dae", "--no-progress"]) == 2
    assert "run `cnnlab notmnist denoise` first" in capsys.readouterr().err
