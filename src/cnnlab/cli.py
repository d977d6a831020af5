"""The ``cnnlab`` command: one table of commands, each a config class and the function it runs.

Every command's flags are its config's keys (``cnnlab.config``: ``--optim.lr``, ``--lr``, ``--limit-train``),
parsed by jsonargparse; ``--config FILE.yaml`` gives keys in YAML, flags on top; ``--print-config`` prints
the resolved config and exits. A command's function is imported only when it runs, so ``--help`` (of
``cnnlab`` and of any command) imports no torch.

A ``CnnlabError`` becomes one ``cnnlab: error: ...`` line and its exit code (2 for bad input or an
unwritable disk, 3 for a diverged run, 130 for Ctrl-C); other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import importlib
import re
import signal
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from cnnlab import __version__
from cnnlab import config as cfgmod
from cnnlab.errors import CnnlabError, ConfigError, DiskError
from cnnlab.experiments import configs as c
from cnnlab.files import disk_error, is_disk_error
from cnnlab.registry import did_you_mean

GROUPS = {
    "cifar": "Exercise 1: non-sequential CNNs on CIFAR-10",
    "food": "Exercise 2: transfer learning on Food-101 (first N classes)",
    "notmnist": "Exercise 3: autoencoders on notMNIST",
    "lab": "run every exercise of a preset, then build the report",
    "report": "build the lab report from recorded runs",
    "cache": "list or clear the prepared-data cache (decoded datasets, features)",
}


@dataclass(frozen=True)
class Command:
    """One command: its words, one help line, the function it runs (``module:function``, imported when
    it runs), its config class, and for comparisons the config whose keys apply to every run."""

    words: tuple[str, ...]
    help: str
    target: str
    config: type | None = None
    every_run: type | None = None
    positional: str = ""  # the config key that the first bare argument sets (evaluate's RUN_DIR)


EXP = "cnnlab.experiments"
COMMANDS = [
    Command(("cifar", "archs"), "list the registered architectures with parameter counts", f"{EXP}.cifar:cmd_archs"),
    Command(("cifar", "summary"), "layer table: layer, output shape, params (input 3x32x32)",
            f"{EXP}.cifar:cmd_summary", c.ArchOptions),
    Command(("cifar", "graph"), "architecture graph with shapes (.svg, .png, or .gv source)",
            f"{EXP}.cifar:cmd_graph", c.GraphOptions),
    Command(("cifar", "train"), "train one architecture into runs/cifar/<name>/", f"{EXP}.cifar:cmd_train",
            c.CifarConfig),
    Command(("cifar", "compare"), "train or reuse every run of a preset and write Table 1",
            f"{EXP}.cifar:cmd_compare", c.SeededCompareOptions, every_run=c.CifarConfig),
    Command(("cifar", "evaluate"), "re-score a run's best checkpoint on a chosen split",
            f"{EXP}.cifar:cmd_evaluate", c.EvaluateOptions, positional="run_dir"),
    Command(("food", "backbones"), "list the registered backbones: params, input size, weights source",
            f"{EXP}.food:cmd_backbones"),
    Command(("food", "train"), "train one backbone + head + strategy into runs/food/<name>/", f"{EXP}.food:cmd_train",
            c.FoodConfig),
    Command(("food", "compare"), "train or reuse every run of a preset and write runs/food/compare.*",
            f"{EXP}.food:cmd_compare", c.CompareOptions, every_run=c.FoodConfig),
    Command(("food", "sweep"), "the data-size sweep: frozen vs fine-tuned at several training sizes; table and plot",
            f"{EXP}.food:cmd_sweep", c.SweepOptions, every_run=c.FoodConfig),
    Command(("food", "evaluate"), "re-score a run's best checkpoint on a chosen split",
            f"{EXP}.food:cmd_evaluate", c.EvaluateOptions, positional="run_dir"),
    Command(("notmnist", "ae"), "train the shallow dense autoencoder into runs/notmnist/<name>/",
            f"{EXP}.notmnist:cmd_ae", c.AEConfig),
    Command(("notmnist", "ae-sweep"), "train (or reuse) one dense autoencoder per code size; table and plot",
            f"{EXP}.notmnist:cmd_sweep", c.SweepConfig),
    Command(("notmnist", "svm"), "SVM test accuracy on raw pixels vs autoencoder codes vs PCA",
            f"{EXP}.notmnist:cmd_svm", c.SvmConfig),
    Command(("notmnist", "denoise"), "train the convolutional denoising autoencoder", f"{EXP}.notmnist:cmd_denoise",
            c.DenoiseConfig),
    Command(("notmnist", "ssl"), "train a SimCLR encoder on the training letters without labels (lightly's NT-Xent)",
            f"{EXP}.notmnist_features:cmd_ssl", c.SslConfig),
    Command(("notmnist", "features"), "probe raw, PCA, AE, DAE, SimCLR and ImageNet features at several label budgets",
            f"{EXP}.notmnist_features:cmd_features", c.FeaturesConfig),
    Command(("notmnist", "summary"), "layer table with output shapes (input 1x28x28) and the code size",
            f"{EXP}.notmnist:cmd_summary", c.AutoencoderOptions),
    Command(("notmnist", "evaluate"), "re-score an ae or denoise run's best checkpoint on a chosen split",
            f"{EXP}.notmnist:cmd_evaluate", c.EvaluateOptions, positional="run_dir"),
    Command(("lab",), GROUPS["lab"], "cnnlab.lab:cmd_lab", c.LabConfig),
    Command(("report",), GROUPS["report"], "cnnlab.report.build:cmd_report", c.ReportConfig),
    Command(("cache", "list"), "entries of the prepared-data cache with their sizes", "cnnlab.cache_command:cmd_list"),
    Command(("cache", "clear"), "delete every entry (rebuilt from the data when next needed)",
            "cnnlab.cache_command:cmd_clear"),
]

GRAMMAR = """\
Keys: --part.name VALUE (e.g. --optim.lr 0.01, --data.limit_train 2000), or the bare name where no
other key ends in it (--lr, --limit-train); dashes or underscores. Lists: 8,16 or [8,16]. Booleans:
--flip / --no-flip / --flip false. A mapping's entries: --model.widths [32,64]. The same keys work in
YAML (--config FILE.yaml; flags override it). --print-config prints the resolved config and exits."""


# ---- help ----------------------------------------------------------------------------------------


def top_help() -> str:
    lines = ["usage: cnnlab [--version] COMMAND ...", "",
             "A reproducible deep-learning lab: CIFAR-10 CNNs, Food-101 transfer learning, notMNIST",
             "autoencoders, and the report built from their runs.", "", "commands:"]
    for group, text in GROUPS.items():
        lines.append(f"  {group:<10} {text}")
        lines += [f"    {' '.join(cmd.words[1:]):<10} {cmd.help}" for cmd in COMMANDS
                  if cmd.words[0] == group and len(cmd.words) > 1]
    lines += ["", "`cnnlab COMMAND --help` lists a command's keys.",
              "Data: --data-root PATH, else $CNNLAB_DATA, else ~/.cache/cnnlab. Runs: ./runs (or $CNNLAB_RUNS)."]
    return "\n".join(lines)


def group_help(group: str) -> str:
    lines = [f"usage: cnnlab {group} COMMAND ...", "", GROUPS[group], "", "commands:"]
    lines += [f"  {' '.join(cmd.words[1:]):<10} {cmd.help}" for cmd in COMMANDS if cmd.words[0] == group]
    return "\n".join(lines + ["", f"`cnnlab {group} COMMAND --help` lists a command's keys."])


def command_help(cmd: Command) -> str:
    prog = "cnnlab " + " ".join(cmd.words)
    if cmd.config is None:
        return f"usage: {prog}\n\n{cmd.help}"
    usage = f"usage: {prog}" + (f" {cmd.positional.upper()}" if cmd.positional else "") + " [KEYS]"
    text = _options_help(cmd.config, prog)
    if cmd.every_run is not None:
        text += (f"\n\nKeys of `{prog.replace('compare', 'train')}`, given here for every run of the preset "
                 f"(the defaults shown are train's; the preset sets its own):\n")
        text += _options_help(cmd.every_run, prog)
    composed = any(cfgmod.parts(cls) for cls in (cmd.config, cmd.every_run) if cls)
    return f"{usage}\n\n{cmd.help}.\n\n{text}" + (f"\n\n{GRAMMAR}" if composed else "")


def _options_help(cls: type, prog: str) -> str:
    parser = cfgmod.parser(cls)
    parser.prog = prog
    text = parser.format_help()
    body = text.split("\n\n", 1)[1] if text.startswith("usage:") else text  # our own usage line instead
    return textwrap.dedent(body).strip()


# ---- parsing -------------------------------------------------------------------------------------


def find_command(argv: list[str]) -> tuple[Command | None, str | None, list[str]]:
    """(the command, or None; the group named when no command matched; the remaining arguments)."""
    for cmd in sorted(COMMANDS, key=lambda x: -len(x.words)):
        if tuple(argv[:len(cmd.words)]) == cmd.words:
            return cmd, cmd.words[0], argv[len(cmd.words):]
    group = argv[0] if argv and argv[0] in GROUPS else None
    return None, group, argv[1:] if group else argv


def _owner(cmd: Command, raw: str) -> type:
    """The config class that the option ``--raw`` belongs to (the command's own first, then every_run's)."""
    for cls in (cmd.config, cmd.every_run):
        if cls is None:
            continue
        for name in (raw, raw[3:] if raw[:3] in ("no-", "no_") else None):
            if name is None:
                continue
            try:
                cfgmod.canonical(cls, name)
                return cls
            except ConfigError:
                pass
    hint = cfgmod.suggest_flag(raw, *(cls for cls in (cmd.config, cmd.every_run) if cls))
    raise ConfigError(f"unknown option --{raw}{hint} (`cnnlab {' '.join(cmd.words)} --help` lists them)")


def parse(cmd: Command, args: list[str]) -> tuple[Any, dict[str, Any], bool]:
    """(the command's config, the keys for every run (comparisons), whether to print the config only).

    Raises:
        ConfigError: unknown option or key, bad value, unreadable --config file, stray argument.
    """
    options, positionals = cfgmod.split_argv(args)
    yaml_file, print_only, kept = None, False, []
    for key, value in options:
        if key.replace("_", "-") == "print-config":
            print_only = True
            if value is not None and value.startswith("\0"):
                positionals.append(value[1:])
        elif key == "config" and not (cmd.config and issubclass(cmd.config, c.CompareOptions)):
            if value is None:
                raise ConfigError("--config: expected a YAML file")
            yaml_file = value.lstrip("\0")
        elif key == "config":  # a comparison's --config is its preset file (the name of earlier versions)
            if any(k == "preset" for k, _ in options):
                raise ConfigError("--config and --preset both name the preset: give one of them")
            kept.append(("preset", value))
        else:
            kept.append((key, value))
    if cmd.config is None:
        if kept or positionals:
            raise ConfigError(f"`cnnlab {' '.join(cmd.words)}` takes no options")
        return None, {}, print_only
    mine = [(k, v) for k, v in kept if _owner(cmd, k) is cmd.config]
    theirs = [(k, v) for k, v in kept if _owner(cmd, k) is not cmd.config]
    given, spare = cfgmod.overrides_from_argv(cmd.config, mine)
    every_run = cfgmod.overrides_from_argv(cmd.every_run, theirs)[0] if cmd.every_run else {}
    positionals += spare
    if cmd.positional and positionals:
        given[cmd.positional] = positionals.pop(0)
    if positionals:
        raise ConfigError(f"unexpected argument {positionals[0]!r}")
    if cmd.positional and not given.get(cmd.positional):
        raise ConfigError(f"`cnnlab {' '.join(cmd.words)}` needs a {cmd.positional.upper()}")
    return cfgmod.load(cmd.config, yaml_file, given), every_run, print_only


def as_flags(message: str) -> str:
    """Parameters named in backquotes by the layers below (`data_dir`) as the flags that set them (--data-dir)."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: "--" + m.group(1).replace("_", "-"), message)


def resolved_text(cmd: Command, config: Any, every_run: dict[str, Any]) -> str:
    """The resolved config as YAML; for a comparison, also every run it would train or reuse."""
    shown = cfgmod.to_dict(config) if config is not None else {}
    if every_run:
        shown["every_run"] = cfgmod.nest(every_run)
    if cmd.every_run is not None:
        module = importlib.import_module(cmd.target.partition(":")[0])
        planned = module.planned_runs(config, every_run)
        shown["runs"] = {cfg.run.name: cfgmod.to_dict(cfg) for cfgs in planned.values() for cfg in cfgs}
    return yaml.safe_dump(shown, sort_keys=False).rstrip()


def run(cmd: Command, config: Any, every_run: dict[str, Any]) -> int:
    module, _, name = cmd.target.partition(":")
    func = getattr(importlib.import_module(module), name)
    if cmd.config is None:
        return int(func() or 0)
    if cmd.every_run is not None:
        return int(func(config, every_run) or 0)
    return int(func(config) or 0)


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):  # `cnnlab ... | head`: stop quietly, as Unix tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"cnnlab {__version__}")
        return 0
    wants_help = any(a in ("-h", "--help") for a in argv)
    cmd, group, rest = find_command([a for a in argv if a not in ("-h", "--help")])
    if cmd is None:
        if group and not rest:
            print(group_help(group))
            return 0 if wants_help or not rest else 2
        if not argv or (wants_help and not rest):
            print(top_help())
            return 0
        word = rest[0] if rest else argv[0]
        choices = [" ".join(x.words[1:]) for x in COMMANDS if x.words[0] == group] if group else list(GROUPS)
        if word.startswith("-"):
            choices = ["--help", "--version"] if not group else ["--help"]
        print(f"cnnlab: error: unknown command {word!r}{did_you_mean(word, choices)}; "
              f"see `cnnlab {group + ' ' if group else ''}--help`", file=sys.stderr)
        return 2
    if wants_help:
        print(command_help(cmd))
        return 0
    try:
        config, every_run, print_only = parse(cmd, rest)
        if print_only:
            print(resolved_text(cmd, config, every_run))
            return 0
        return run(cmd, config, every_run)
    except CnnlabError as e:
        print(f"cnnlab: error: {as_flags(str(e))}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # a write that no layer translated: still one line when the user can fix it
        if not is_disk_error(e):
            raise
        print(f"cnnlab: error: {disk_error(e, e.filename or '?')}", file=sys.stderr)
        return DiskError.exit_code
    except KeyboardInterrupt:
        print("cnnlab: error: interrupted; finished runs and last.ckpt files are kept (re-run with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
