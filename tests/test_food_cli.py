"""`cnnlab food ...` end to end on a tiny Food-101 tree: exit code 0 and the run-folder contract for good
input, exit code 2 and one line for bad input; compare writes its table and reuses finished runs."""

from __future__ import annotations

import json

import pytest
import yaml
from food_tree import make_food_tree

from cnnlab.cli import main

FAST = ["--num-classes", "3", "--input-size", "32", "--batch-size", "4", "--epochs", "1", "--no-progress",
        "--logger", "none", "--precision", "32-true"]


@pytest.fixture
def food(tmp_path):
    return make_food_tree(tmp_path / "src")


def test_group_alone_prints_help(capsys):
    main(["food"])
    assert "backbones" in capsys.readouterr().out


def test_backbones_lists_the_registry(capsys):
    assert main(["food", "backbones"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "resnet50.tv2_in1k" in out and "offline" in out


def test_train_writes_the_run_folder(food, tmp_path, capsys):
    assert main(["food", "train", "--data-dir", str(food), "--head", "mlp:8", "--name", "tiny", *FAST]) == 0
    run = tmp_path / "runs" / "food" / "tiny"
    for name in ("config.yaml", "metrics.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                 "confusion.png", "summary.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    for key in ("train_acc", "test_acc", "top5", "per_class_acc", "params", "trainable_params", "wall_time_s"):
        assert key in summary, key
    assert 0 <= summary["test_acc"] <= summary["top5"] <= 1
    assert list(summary["per_class_acc"]) == ["ramen", "apple_pie", "sushi"]
    assert summary["trainable_params"] == 1280 * 8 + 8 + 8 * 3 + 3  # only the head
    assert "test acc" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (["--num-classes", "9"], "only 4 classes (ramen ... bibimbap), fewer than the 9 asked for; use --num-classes 4"),
    (["--head", "mlp:"], "hidden sizes"),
    (["--backbone", "resnet5O"], "unknown backbone"),
    (["--strategy", "finetune", "--unfreeze", "some"], "unfreeze"),
    (["--strategy", "finetune", "--unfreeze", "40"], "blocks"),
])
def test_bad_input_is_one_line_and_exit_code_2(food, capsys, bad, message):
    assert main(["food", "train", "--data-dir", str(food), *FAST, *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("cnnlab: error:") and message in err[-1], err


def test_missing_data_dir_exit_code_2(tmp_path, capsys):
    assert main(["food", "train", "--data-dir", str(tmp_path / "nowhere"), *FAST]) == 2
    assert "not found" in capsys.readouterr().err


def test_compare_writes_table_and_reuses_runs(food, tmp_path, capsys):
    config = tmp_path / "compare.yaml"
    config.write_text(yaml.safe_dump({
        "defaults": {"num_classes": 3, "input_size": 32, "batch_size": 4, "epochs": 1, "progress": False,
                     "logger": "none", "precision": "32-true", "eval_train": False},
        "runs": [{"name": "lin", "head": "linear", "strategy": "frozen"},
                 {"name": "mlp", "head": "mlp:8", "strategy": "frozen", "dropout": 0.0}],
    }))
    assert main(["food", "compare", "--config", str(config), "--data-dir", str(food)]) == 0
    table = (tmp_path / "runs" / "food" / "compare.md").read_text()
    assert "| Backbone | Head | Strategy | Trainable params | Epochs | Time | Acc. train % | Acc. test % | Top-5 % |" in table
    assert "Best configuration, chosen on validation accuracy: **efficientnet_lite0 + " in table
    for suffix in (".csv", ".tex"):
        assert (tmp_path / "runs" / "food" / f"compare{suffix}").is_file()
    capsys.readouterr()
    assert main(["food", "compare", "--config", str(config), "--data-dir", str(food)]) == 0
    assert capsys.readouterr().out.count("reusing finished run") == 2


def test_compare_config_errors_name_the_run(food, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"runs": [{"name": "x", "heads": "linear"}]}))
    assert main(["food", "compare", "--config", str(config)]) == 2


@pytest.mark.parametrize("name", ["quick", "full"])
def test_shipped_compare_presets_are_valid(name):
    from cnnlab.experiments.food import read_compare_config, run_config

    defaults, runs = read_compare_config("food", name)
    configs = [run_config(defaults, run, {}) for run in runs]
    # every strategy in each preset the lab runs for Food (quick: the scratch point is in the sweep)
    lab = {"quick": ["quick", "sweep"], "full": ["full", "sweep-full"]}[name]
    shipped = [run_config(d, r, {}) for p in lab for d, rs in [read_compare_config("food", p)] for r in rs]
    assert {c.strategy for c in shipped} == {"frozen", "finetune", "scratch"}
    assert len({c.run.name for c in configs}) == len(configs)


def test_default_class_count_uses_what_the_data_has(food, tmp_path, capsys):
    """No --num-classes: the lab's 20, or every class of a smaller copy (this tree has 4), said in one line;
    the run's name carries the class count."""
    fast = [a for a in FAST if a not in ("--num-classes", "3")]
    assert main(["food", "train", "--data-dir", str(food), *fast]) == 0
    out, err = capsys.readouterr()
    assert "the data has 4 classes, fewer than the lab's 20: using those 4" in err
    summary = json.loads(next((tmp_path / "runs" / "food").glob("*/summary.json")).read_text())
    assert summary["num_classes"] == 4 and summary["name"] == "efficientnet_lite0-linear-frozen-c4-s0"


def test_evaluate_rescores_the_best_checkpoint(food, tmp_path, capsys):
    assert main(["food", "train", "--data-dir", str(food), "--name", "ev", *FAST]) == 0
    summary = json.loads((tmp_path / "runs" / "food" / "ev" / "summary.json").read_text())
    capsys.readouterr()
    assert main(["food", "evaluate", str(tmp_path / "runs" / "food" / "ev"), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert f"test top-1 {100 * summary['test_acc']:.1f}%" in out and out.count("\n") == 1
    capsys.readouterr()
    assert main(["food", "evaluate", str(tmp_path / "runs" / "food" / "ev"), "--split", "val"]) == 0
    assert f"val top-1 {100 * summary['best_monitored']:.1f}%" in capsys.readouterr().out  # what chose it
    assert main(["food", "train", "--data-dir", str(food), "--name", "noval", "--val-fraction", "0", *FAST]) == 0
    assert main(["food", "evaluate", str(tmp_path / "runs" / "food" / "noval"), "--split", "val"]) == 2


def test_sweep_scores_every_training_size_on_the_same_test_and_val_images(tmp_path, capsys):
    food = make_food_tree(tmp_path / "src", train_per_class=8, test_per_class=2)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "defaults": {"num_classes": 3, "input_size": 32, "batch_size": 4, "epochs": 1, "progress": False,
                     "logger": "none", "precision": "32-true", "eval_train": False, "val_fraction": 0.25},
        "runs": [{"name": "f2", "strategy": "frozen", "train_per_class": 2},
                 {"name": "fall", "strategy": "frozen"},
                 {"name": "t2", "strategy": "finetune", "train_per_class": 2, "finetune.head_epochs": 1,
                  "finetune.unfreeze": "1"},
                 {"name": "tall", "strategy": "finetune", "finetune.head_epochs": 1, "finetune.unfreeze": "1"}]}))
    assert main(["food", "sweep", "--preset", str(config), "--data-dir", str(food)]) == 0
    out = tmp_path / "runs" / "food"
    summaries = {p.parent.name.split("-")[0]: json.loads(p.read_text()) for p in out.glob("*/summary.json")}
    assert {s["train_images"] for s in summaries.values()} == {6, 18}  # 2 per class; all 8 less 2 held out
    assert {s["test_images"] for s in summaries.values()} == {6} and {s["val_images"] for s in summaries.values()} == {6}
    table = (out / "sweep.md").read_text()
    assert "| Images per class | Strategy | Acc. test % | Budget |" in table and "images through the backbone" in table
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((out / "sweep.json").read_text())["runs"]) == 4
    capsys.readouterr()
    assert main(["food", "sweep", "--preset", str(config), "--data-dir", str(food)]) == 0
    assert capsys.readouterr().out.count("reusing finished run") == 4
