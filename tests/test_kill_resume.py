"""Kill anywhere, lose nothing: a tiny training is SIGKILLed mid-epoch, while writing a checkpoint,
between last.ckpt and best.ckpt, and during the final evaluation; the resumed run always finishes with
each epoch once in metrics.csv and best.ckpt holding the best monitored value of metrics.csv."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.config import build
from cnnlab.experiments import cifar
from cnnlab.train.checkpoint import read_checkpoint

HELPER = Path(__file__).with_name("kill_helper.py")


def settings(data_dir: Path) -> dict:
    return dict(arch="sequential", model={"widths": [8, 16, 32], "dense": [32]}, data_dir=str(data_dir), epochs=3,
                batch_size=16, progress=False, logger="csv", name="k", monitor="test")


@pytest.mark.parametrize("point", ["mid-epoch", "checkpoint-write", "best-copy", "final-eval"])
def test_killed_run_resumes_whole(cifar_tree, point):
    cfg = settings(cifar_tree)
    killed = subprocess.run([sys.executable, str(HELPER), point, json.dumps(cfg)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = Path(os.environ["CNNLAB_RUNS"]) / "cifar" / "k"
    assert not (run / "summary.json").exists()

    assert cifar.train(build(cifar.CifarConfig, **cfg, resume=True)) == run
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    with (run / "logs" / "metrics.csv").open() as f:
        logged = [int(float(r["epoch"])) for r in csv.DictReader(f) if r.get("test_acc")]
    assert logged == [0, 1, 2]
    assert not list(run.rglob("*.tmp-*"))
    best_value = max(float(r["test_acc"]) for r in rows)
    best_epoch = next(int(r["epoch"]) for r in rows if float(r["test_acc"]) == best_value)
    recorded = read_checkpoint(run / "checkpoints" / "best.ckpt")["callbacks"]["EpochRecord"]
    assert recorded["best_epoch"] == best_epoch and recorded["best_score"] == pytest.approx(best_value, abs=1e-6)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_epoch"] == best_epoch and summary["epochs"] == 3
    assert summary["test_acc"] == pytest.approx(best_value, abs=1.01 / summary["test_images"])


@pytest.mark.parametrize("point", ["mid-epoch", "best-copy", "final-eval"])
def test_killed_run_that_keeps_its_last_epoch_resumes_whole(cifar_tree, point):
    # monitor none: nothing is scored while training, and best.ckpt is last.ckpt's copy made when fit ends,
    # so "best-copy" kills after the last epoch's checkpoint, before that copy
    cfg = {**settings(cifar_tree), "monitor": "none", "val_fraction": 0}
    killed = subprocess.run([sys.executable, str(HELPER), point, json.dumps(cfg)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = Path(os.environ["CNNLAB_RUNS"]) / "cifar" / "k"
    assert not (run / "summary.json").exists()
    assert (run / "checkpoints" / "best.ckpt").exists() == (point == "final-eval")

    assert cifar.train(build(cifar.CifarConfig, **cfg, resume=True)) == run
    with (run / "metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    assert not list(run.rglob("*.tmp-*"))
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    best = read_checkpoint(run / "checkpoints" / "best.ckpt")
    assert last["callbacks"]["EpochRecord"]["last_epoch"] == 3
    assert all(torch.equal(last["state_dict"][k], best["state_dict"][k]) for k in last["state_dict"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == summary["best_epoch"] == 3 and summary["monitor"] == "none"
    assert cifar.evaluate_run(run)["acc"] == pytest.approx(summary["test_acc"])
