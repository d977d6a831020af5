"""Every command's --help renders (help texts are format strings: a stray % breaks them)."""

import argparse

import pytest

from cnnlab.cli import GROUPS, build_parser, main


def all_commands():
    """Every command and sub-command: each group's parser is built as `cnnlab <group> ...` builds it
    (the top-level parser only lists the groups, without importing them)."""
    commands = []

    def walk(p, prefix):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    commands.append(prefix + [name])
                    walk(sub, prefix + [name])

    for group in GROUPS:
        groups = next(a for a in build_parser([group])._actions if isinstance(a, argparse._SubParsersAction))
        commands.append([group])
        walk(groups.choices[group], [group])
    return commands


@pytest.mark.parametrize("command", all_commands(), ids=" ".join)
def test_help_renders(command, capsys):
    with pytest.raises(SystemExit) as done:
        main(command + ["--help"])
    assert done.value.code == 0
    assert "usage: cnnlab" in capsys.readouterr().out


def test_a_group_alone_prints_its_help(capsys):
    assert main(["cifar"]) == 0
    assert "archs" in capsys.readouterr().out


def test_the_lab_groups_exist():
    assert {"cifar", "food", "notmnist"} <= {c[0] for c in all_commands()} and set(GROUPS) >= {"lab", "report"}


def test_top_level_help_and_version_import_no_framework():
    import subprocess
    import sys

    for flag in ("--help", "--version"):
        code = ("import sys\nfrom cnnlab.cli import main\ntry:\n    main([%r])\nexcept SystemExit:\n    pass\n"
                "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'timm', 'torchvision'}))"
                % flag)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


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

    done = subprocess.run([sys.executable, "-m", "cnnlab", "cifar", "train", "--arch", "sequential", "--model-opt",
                           "widths=[8,16,32]", "--data-dir", str(cifar_tree), "--epochs", "2", "--batch-size", "16"],
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
