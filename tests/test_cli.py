"""Every command's --help renders (help texts are format strings: a stray % breaks them)."""

import argparse

import pytest

from cnnlab.cli import GROUPS, build_parser, main


def all_commands():
    parser = build_parser([])
    commands = []

    def walk(p, prefix):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    commands.append(prefix + [name])
                    walk(sub, prefix + [name])

    walk(parser, [])
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
