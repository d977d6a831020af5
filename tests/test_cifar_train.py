import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.config import build
from cnnlab.errors import ConfigError
from cnnlab.cli import main
from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig
from cnnlab.models import list_models
from cnnlab.train.classifier import accuracy, predict_logits
from cnnlab.train.checkpoint import load_model_weights

from conftest import shared_data

SMALL = {"widths": [8, 16, 32], "dense": [32]}


def tiny_config(data_dir, **kw) -> CifarConfig:
    base = dict(arch="sequential", model=SMALL, data_dir=str(data_dir), epochs=3, batch_size=16,
                progress=False, logger="none")
    return build(CifarConfig, **{**base, **kw})


def read_metrics(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_run_folder_contract_and_best_checkpoint(cifar_tree):
    run_dir = cifar.train(tiny_config(cifar_tree, monitor="test"))  # as the lab asks
    for name in ("config.yaml", "metrics.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                 "model_summary.txt", "architecture.svg", "summary.json"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("name", "exercise", "params", "epochs", "best_epoch", "wall_time_s", "train_acc", "test_acc",
                "architecture", "monitor", "device", "torch"):
        assert key in summary, key
    assert summary["exercise"] == "cifar" and summary["epochs"] == 3 and 0 <= summary["test_acc"] <= 1
    rows = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    best_acc = max(float(r["test_acc"]) for r in rows)
    assert summary["best_epoch"] == next(int(r["epoch"]) for r in rows if float(r["test_acc"]) == best_acc)
    # best.ckpt holds the best monitored accuracy, and reloading it reproduces that accuracy
    cfg = tiny_config(cifar_tree, monitor="test")
    model = load_model_weights(cifar.build_model(cfg.arch, cfg.model), run_dir / "checkpoints" / "best.ckpt")
    splits, _ = cifar.make_splits(cfg.data, cfg.run.seed)
    loader = cifar.TensorLoader(splits.test.x, splits.test.y, 100, transform=cifar.eval_transform(cfg))
    logits, targets = predict_logits(model.to(memory_format=torch.channels_last), loader, precision=summary["hyperparameters"]["precision"])
    assert accuracy(logits, targets) == pytest.approx(best_acc, abs=1.01 / len(targets))
    assert summary["test_acc"] == pytest.approx(best_acc, abs=1.01 / len(targets))


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("seed", [0, 1])
def test_default_recipe_learns_the_tiny_task(cifar_tree, precision, seed):
    # Each class is one colour plus noise: any classifier should fit it. 30 epochs of 3 batches is 90
    # steps. The default recipe fits it in both precisions with room to spare over 0.95, while the
    # previous one (SGD 0.05) stalled well below it: the margin is in the closing note of issue 9.
    # What learns is measured on all 60 training images, with the last epoch's weights winning ties: a
    # val split of 6 images reaches 100% early and, ties keeping the earlier epoch, would pick that one.
    run_dir = cifar.train(tiny_config(cifar_tree, epochs=30, precision=precision, seed=seed, monitor="test",
                                      val_fraction=0.0))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["hyperparameters"]["precision"] == precision
    assert summary["train_acc"] >= 0.95, summary["train_acc"]


def test_existing_names_get_a_suffix_force_replaces_and_resume_continues(cifar_tree, capsys):
    first = cifar.train(tiny_config(cifar_tree, name="exp", epochs=1))
    second = cifar.train(tiny_config(cifar_tree, name="exp", epochs=1))
    assert second.name == "exp-2" and first.is_dir()
    assert "exists; writing to" in capsys.readouterr().err
    resumed = cifar.train(tiny_config(cifar_tree, name="exp", epochs=3, resume=True))
    assert resumed == first
    assert [int(r["epoch"]) for r in read_metrics(resumed)] == [1, 2, 3]
    assert json.loads((resumed / "summary.json").read_text())["epochs"] == 3
    forced = cifar.train(tiny_config(cifar_tree, name="exp", epochs=1, force=True))
    assert forced == first and [int(r["epoch"]) for r in read_metrics(forced)] == [1]


def test_monitoring_a_validation_split(cifar_tree):
    run_dir = cifar.train(tiny_config(cifar_tree, monitor="val", epochs=1))
    assert "val_acc" in read_metrics(run_dir)[0]
    assert json.loads((run_dir / "summary.json").read_text())["monitor"] == "val_acc"


def test_monitoring_none_trains_on_all_of_train_and_keeps_the_last_epoch(cifar_tree):
    cfg = tiny_config(cifar_tree, monitor="none", val_fraction=0, epochs=2, flip_tta=True, shift_tta=True)
    run_dir = cifar.train(cfg)
    rows = read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"] and not any(k in rows[0] for k in ("val_acc", "test_acc"))
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["monitor"] == "none" and s["best_epoch"] == s["epochs"] == 2 and s["val_chosen"] is None
    assert s["val_images"] == 0 and s["train_images"] == len(cifar.make_splits(cfg.data, 0)[0].train)
    assert s["best_monitored"] is None and "last epoch" in s["callback"]
    # best.ckpt is the last epoch's weights: re-scoring it (6 views, as the final scoring) gives the summary's
    assert cifar.evaluate_run(run_dir)["acc"] == pytest.approx(s["test_acc"])
    with pytest.raises(ConfigError, match="no val split"):
        cifar.evaluate_run(run_dir, "val")
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(last[k], best[k]) for k in last)


def test_monitoring_none_refuses_a_val_split_it_would_not_use_and_early_stopping():
    with pytest.raises(ConfigError, match="val_fraction 0"):
        build(CifarConfig, monitor="none", val_fraction=0.1)
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        build(CifarConfig, monitor="none", val_fraction=0, early_stopping_patience=2)
    assert build(CifarConfig, monitor="none", val_fraction=0, flip_tta=True, shift_tta=True).shift_tta


def test_cli_end_to_end(cifar_tree, tmp_path, capsys):
    assert main(["cifar", "archs"]) == 0
    assert "multipath" in capsys.readouterr().out
    assert main(["cifar", "summary", "--arch", "multipath"]) == 0
    assert "Total params" in capsys.readouterr().out
    assert main(["cifar", "graph", "--arch", "residual", "--out", str(tmp_path / "g.svg")]) == 0
    assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    args = ["cifar", "train", "--arch", "sequential", "--model.widths", "[8,16,32]", "--model.dense", "[16]",
            "--data-dir", str(cifar_tree), "--epochs", "1", "--batch-size", "16", "--no-progress", "--name", "cli"]
    assert main(args) == 0
    assert "test acc" in capsys.readouterr().out
    assert main(["cifar", "train", "--arch", "nope", "--data-dir", str(cifar_tree)]) == 2
    assert "unknown architecture 'nope'" in capsys.readouterr().err
    assert main(["cifar", "train", "--data-dir", str(cifar_tree), "--model.widht", "[8]", "--epochs", "1"]) == 2
    assert "did you mean 'widths'" in capsys.readouterr().err


def test_graph_without_dot_writes_source(monkeypatch, tmp_path, capsys):
    import cnnlab.models.inspect as inspect_mod
    monkeypatch.setattr(inspect_mod, "has_dot", lambda: False)
    assert main(["cifar", "graph", "--arch", "multipath", "--out", str(tmp_path / "g.svg")]) == 0
    assert (tmp_path / "g.gv").read_text().startswith("strict digraph")
    assert "dot -Tsvg" in capsys.readouterr().err


def test_compare_writes_table1_and_reuses_finished_runs(cifar_tree, tmp_path, capsys):
    config = tmp_path / "table.yaml"
    config.write_text(f"""
defaults: {{data_dir: {cifar_tree}, epochs: 1, batch_size: 16, progress: false, logger: none}}
runs:
  - {{name: seq, arch: sequential, model: {{widths: [8, 16, 32], dense: [16]}}}}
  - {{name: res, arch: residual, model: {{stem: 8, widths: [8, 16, 16]}}}}
""")
    assert main(["cifar", "compare", "--config", str(config), "--seeds", "2"]) == 0
    table = (Path(os.environ["CNNLAB_RUNS"]) / "cifar" / "table1.md").read_text()
    assert ("| Model | Architecture | Callback | Acc. train % | Acc. test % (epoch chosen on test: optimistic) | "
            "Acc. test % (epoch chosen on val, or the last) |") in table
    assert "Residual[" in table and "±" in table
    for suffix in (".csv", ".tex"):
        assert (Path(os.environ["CNNLAB_RUNS"]) / "cifar" / f"table1{suffix}").is_file()
    capsys.readouterr()
    assert main(["cifar", "compare", "--config", str(config), "--seeds", "2"]) == 0
    assert capsys.readouterr().out.count("reusing finished run") == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - {name: x, arch: sequential, epochz: 1}\n")
    assert main(["cifar", "compare", "--config", str(bad)]) == 2
    assert "did you mean 'epochs'" in capsys.readouterr().err


@pytest.mark.parametrize("monitor", [[], ["--monitor", "none", "--val-fraction", "0"]], ids=["val", "none"])
def test_ddp_two_cpu_processes_write_one_best_checkpoint(cifar_tree, tmp_path, monitor):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cnnlab", "cifar", "train", "--arch", "sequential", "--model.widths", "[8,16,32]",
           "--data-dir", str(cifar_tree), "--epochs", "2", "--batch-size", "8", "--accelerator", "cpu",
           "--devices", "2", "--hardware.strategy", "ddp", "--precision", "32-true", "--no-progress", "--name", "ddp",
           *monitor]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = Path(os.environ["CNNLAB_RUNS"]) / "cifar"
    assert sorted(p.name for p in runs.iterdir()) == ["ddp"]  # the worker reused its parent's folder
    assert sorted(p.name for p in (runs / "ddp" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert [int(r["epoch"]) for r in read_metrics(runs / "ddp")] == [1, 2]


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("arch", list_models())
def test_defaults_learn_two_epochs_of_2000_real_images(arch, precision, real_data_cache):
    """The quick run people try first: every architecture, at its defaults, clears 35% test accuracy
    (chance 10%). ``bench/cifar_quick_defaults.py`` prints the measured accuracies with their intervals
    (1,000 test images: about +-3 points at 95%) beside the previous recipe's."""
    data = shared_data() / "cifar10-jpg.tar.gz"
    cfg = build(CifarConfig, arch=arch, data_dir=str(data), epochs=2, limit_train=2000, limit_test=1000,
                      precision=precision, progress=False, logger="none")
    summary = json.loads((cifar.train(cfg) / "summary.json").read_text())
    assert summary["test_acc"] >= 0.35, (arch, precision, summary["test_acc"])


def test_auto_precision_is_printed_once_and_recorded(cifar_tree, capsys):
    from cnnlab.train.engine import precision_choice

    expected, reason = precision_choice("auto")
    run_dir = cifar.train(tiny_config(cifar_tree, epochs=2))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnlab: precision")]
    assert lines == [f"cnnlab: precision {expected} ({reason})"] and reason.startswith("auto: this")
    hp = json.loads((run_dir / "summary.json").read_text())["hyperparameters"]
    assert hp["precision"] == expected and hp["precision_reason"] == reason


def test_the_recorded_recipe_names_every_setting_that_applies_and_only_those():
    from cnnlab.config import build

    fast = cifar.recipe(build(CifarConfig, optimizer="sgd", momentum=0.85, schedule="onecycle", final_lr=0.07,
                              crop_padding=2, crop_fill="reflect", alternating_flips=True, lookahead=True,
                              flip_tta=True, shift_tta=True, monitor="val"))
    assert fast["momentum"] == 0.85 and fast["final_lr"] == 0.07 and fast["crop_fill"] == "reflect"
    assert fast["alternating_flips"] and fast["lookahead"] and fast["shift_tta"] and fast["monitor"] == "val"
    plain = cifar.recipe(build(CifarConfig, optimizer="adamw", schedule="constant", crop_padding=0, flip=False))
    assert not {"momentum", "warmup", "final_lr", "crop_fill", "alternating_flips"} & set(plain)
    assert plain["optimizer"] == "adamw" and plain["flip"] is False and plain["flip_tta"] is False
