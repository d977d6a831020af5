"""Every command's --help renders (help texts are format strings: a stray % breaks them)."""

import subprocess
import sys

import pytest
import yaml

from cnnlab.cli import COMMANDS, GROUPS, main

ALL_COMMANDS = [list(c.words) for c in COMMANDS] + [[g] for g in GROUPS if not any(c.words == (g,) for c in COMMANDS)]


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_help_renders(command, capsys):
    assert main(command + ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: cnnlab") and "%(" not in out and "Namespace(" not in out and "<factory>" not in out


def test_every_command_has_a_description_and_every_key_a_help_text(capsys):
    from cnnlab import config as cfgmod

    for cmd in COMMANDS:
        assert cmd.help, cmd.words
        for cls in filter(None, (cmd.config, cmd.every_run)):
            assert cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("), cls  # not the dataclass repr
            missing = [k for k, leaf in cfgmod.leaves(cls).items() if not leaf.help]
            assert not missing, (cls, missing)


def test_a_group_alone_prints_its_help(capsys):
    assert main(["cifar"]) == 0
    assert "archs" in capsys.readouterr().out


def test_the_lab_groups_exist():
    assert {"cifar", "food", "notmnist"} <= {c[0] for c in ALL_COMMANDS} and set(GROUPS) >= {"lab", "report"}


def test_help_of_every_command_and_version_import_no_framework():
    """`--help` and `--version` stay quick: no torch, Lightning, timm or torchvision is imported for them."""
    commands = [[], *ALL_COMMANDS]
    code = ("import sys\nfrom cnnlab.cli import main\n"
            f"for words in {commands!r}:\n    main(words + ['--help'])\nmain(['--version'])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'timm', 'torchvision'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:] + done.stderr


def test_one_grammar_flags_yaml_and_print_config(tmp_path, capsys):
    """Dotted keys, shorthands, dashes, comma lists and a YAML file all set the same keys."""
    path = tmp_path / "run.yaml"
    path.write_text("optim: {lr: 0.5}\ndata.limit_train: 300\nepochs: 4\n")
    assert main(["cifar", "train", "--config", str(path), "--epochs", "2", "--model.widths", "8,16",
                 "--hardware.strategy", "ddp", "--no-flip", "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["optim"]["lr"] == 0.5 and shown["optim"]["epochs"] == 2  # the flag beats the file
    assert shown["data"]["limit_train"] == 300 and shown["data"]["flip"] is False
    assert shown["model"] == {"widths": [8, 16]} and shown["hardware"]["strategy"] == "ddp"
    assert shown["run"]["name"] == ""  # derived when the run folder is opened: residual-n300-s0


def test_help_shows_each_commands_own_defaults(capsys):
    assert main(["notmnist", "denoise", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "training epochs (default: 10)" in out and "(default: mse)" in out and "(default: 128)" in out
    assert main(["food", "train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "training epochs (default: 20)" in out and "(default: cosine)" in out


def test_mapping_entries_are_typed_and_merge_with_the_file(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("model: {stem: 16}\nhardware: {devices: 2}\n")  # a number for a text key, as YAML reads it
    assert main(["cifar", "train", "--config", str(path), "--model.widths", "32", "--model.bn", "true",
                 "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["model"] == {"stem": 16, "widths": 32, "bn": True} and shown["hardware"]["devices"] == "2"
    from cnnlab import config as cfgmod
    from cnnlab.models.cifar import SequentialConfig

    assert cfgmod.build(SequentialConfig, {"widths": 32}).widths == [32]  # one value: a list of one


@pytest.mark.parametrize("argv,message", [
    (["cifar", "train", "--flip", "maybe"], "--flip: expected true or false, got 'maybe'"),
    (["cifar", "train", "--run", "3"], "run is a part of the config, not a value"),
    (["cifar", "compare", "--seeds", "0"], "seeds: must be at least 1, got 0"),
    (["cifar", "train", "--batch-size", "0"], "optim.batch_size: must be at least 1, got 0"),
    (["food", "train", "--val-fraction", "1.5"], "data.val_fraction: must be in [0, 1), got 1.5"),
    (["food", "compare", "--seeds", "2"], "unknown option --seeds"),
    (["notmnist", "svm", "--resume"], "unknown option --resume"),
])
def test_more_bad_values_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_strategy_is_lightnings_only_where_there_is_no_transfer_strategy(capsys):
    assert main(["cifar", "train", "--strategy", "ddp", "--print-config"]) == 0  # as earlier versions took it
    assert yaml.safe_load(capsys.readouterr().out)["hardware"]["strategy"] == "ddp"
    assert main(["food", "train", "--strategy", "finetune", "--hardware.strategy", "ddp", "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["strategy"] == "finetune" and shown["hardware"]["strategy"] == "ddp"


def test_a_derived_name_follows_the_config():
    from cnnlab import config as cfgmod
    from cnnlab.experiments.configs import CifarConfig, name_of

    cfg = cfgmod.build(CifarConfig, limit_train=300)
    assert name_of(cfg) == "residual-n300-s0" and name_of(cfgmod.replace(cfg, seed=1)) == "residual-n300-s1"
    assert name_of(cfgmod.replace(cfg, name="mine")) == "mine"


@pytest.mark.parametrize("argv,message", [
    (["cifar", "train", "--epoch", "2"], "unknown option --epoch (did you mean --epochs?)"),
    (["cifar", "train", "--hardware.strateg", "ddp"], "did you mean --hardware.strategy?"),
    (["cifar", "train", "--lr", "fast"], "optim.lr: expected a number, got 'fast'"),
    (["cifar", "train", "--optimizer", "adam"], "optim.optimizer: 'adam' is not one of 'sgd', 'adamw'"),
    (["food", "train", "--strategy", "frozn"], "strategy: 'frozn' is not one of"),
    (["cifar", "compare", "--preset", "quik"], "unknown cifar preset 'quik' (did you mean 'quick'?)"),
    (["cifar", "evaluate"], "needs a RUN_DIR"),
    (["cifar", "trian"], "unknown command 'trian' (did you mean 'train'?)"),
])
def test_typos_and_bad_values_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_comparisons_read_shipped_presets_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["cifar", "compare", "--preset", "quick", "--epochs", "1", "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["preset"] == "quick" and shown["every_run"] == {"optim": {"epochs": 1}}
    runs = shown["runs"]  # every run the comparison would train or reuse, resolved and named
    assert set(runs) == {f"{a}-s0" for a in ("sequential", "multipath", "multifeature", "residual")}
    assert all(r["optim"]["epochs"] == 1 and r["optim"]["optimizer"] == "sgd" for r in runs.values())
    assert main(["cifar", "compare", "--preset", "full", "--model.widths", "8,16,16", "--seeds", "2",
                 "--print-config"]) == 0
    runs = yaml.safe_load(capsys.readouterr().out)["runs"]
    assert runs["residual-s1"]["model"] == {"widths": [8, 16, 16], "blocks_per_stage": 2, "stem": 64}  # merged
    from cnnlab.experiments.common import read_compare_config

    for kind in ("cifar", "food"):
        for preset in ("quick", "full"):
            defaults, runs = read_compare_config(kind, preset)
            assert runs and all(r["name"] for r in runs)


def test_progress_bars_go_to_stderr_count_epochs_from_1_and_name_the_split(capsys):
    from cnnlab.train.engine import ProgressBar

    bar = ProgressBar("val")
    assert bar.validation_description == "Evaluating val"
    train_bar = bar.init_train_tqdm()
    train_bar.total = 3
    train_bar.set_description("Epoch 1/2")
    train_bar.update(1)
    train_bar.close()
    out, err = capsys.readouterr()
    assert out == "" and "Epoch 1/2" in err


def test_no_bar_frames_when_output_is_not_a_terminal(cifar_tree):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cnnlab", "cifar", "train", "--arch", "sequential", "--model.widths",
                           "[8,16,32]", "--data-dir", str(cifar_tree), "--epochs", "2", "--batch-size", "16"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("\n") == 1 and "test acc" in done.stdout  # one line: where the results are
    assert "it/s" not in done.stderr and "Epoch" not in done.stderr


def test_cache_list_and_clear(tmp_path, capsys, monkeypatch):
    import os
    from pathlib import Path

    cache = Path(os.environ["CNNLAB_CACHE"])
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "cifar10-abc.pt").write_bytes(b"x" * 3_000_000)
    (cache / "extracted-food-101-def").mkdir()
    (cache / "extracted-food-101-def" / "a.jpg").write_bytes(b"y" * 1_000_000)
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "3.0" and out[0].endswith("cifar10-abc.pt")
    assert out[-1] == f"{cache}: 2 entries, 4.0 MB"
    assert main(["cache", "clear"]) == 0
    assert "removed 2 entries, freed 4.0 MB" in capsys.readouterr().out and list(cache.iterdir()) == []


def test_preset_files_of_earlier_versions_still_name_their_presets(tmp_path, monkeypatch):
    from cnnlab.experiments.common import preset_path

    monkeypatch.chdir(tmp_path)  # where configs/ no longer exists
    assert preset_path("cifar", "configs/cifar/table1-quick.yaml") == preset_path("cifar", "quick")
    assert preset_path("food", "configs/food/compare.yaml") == preset_path("food", "full")
    with pytest.raises(Exception, match="preset file not found"):
        preset_path("cifar", "configs/cifar/mine.yaml")


@pytest.mark.parametrize("bad,message", [
    (["--precision", "fp16"], "hardware: Lightning refuses"),
    (["--accelerator", "tpuu"], "hardware: Lightning refuses"),
    (["--seed", "-1"], "run.seed: must be at least 0"),
    (["--force", "--resume"], "give one of them"),
    (["--name", "a b"], "invalid run name 'a b'"),
])
def test_refused_settings_are_one_line_and_leave_no_run_folder(cifar_tree, tmp_path, bad, message, capsys):
    args = ["cifar", "train", "--arch", "sequential", "--data-dir", str(cifar_tree), "--epochs", "1", *bad]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    runs = tmp_path / "runs" / "cifar"
    assert not runs.exists() or not any(runs.iterdir())


def test_help_piped_into_head_ends_quietly():
    done = subprocess.run(f"{sys.executable} -m cnnlab cifar train --help | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("usage: cnnlab cifar train") and "Traceback" not in done.stderr
