"""The ``cnnlab`` command: one sub-command group per exercise, plus ``lab`` and ``report``.

Each group lives in its experiment module, which exposes ``add_commands(subparsers)``; every leaf
command sets ``func(args) -> int``. A ``CnnlabError`` becomes one ``cnnlab: error: ...`` line and its
exit code (2 for bad input or an unwritable disk, 3 for a diverged run, 130 for Ctrl-C); other
exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cnnlab import __version__
from cnnlab.errors import CnnlabError, DiskError
from cnnlab.files import disk_error, is_disk_error

# Sub-command group -> module that defines it. Imported lazily so `cnnlab --help` stays fast.
GROUPS = {
    "cifar": ("cnnlab.experiments.cifar", "Exercise 1: non-sequential CNNs on CIFAR-10"),
    "food": ("cnnlab.experiments.food", "Exercise 2: transfer learning on Food-101 (first N classes)"),
    "notmnist": ("cnnlab.experiments.notmnist", "Exercise 3: autoencoders on notMNIST"),
    "lab": ("cnnlab.lab", "run every exercise of a preset, then build the report"),
    "report": ("cnnlab.report.build", "build the lab report from recorded runs"),
    "cache": ("cnnlab.cache_command", "list or clear the prepared-data cache (decoded datasets, features)"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="A reproducible deep-learning lab: CIFAR-10 CNNs, Food-101 transfer learning, "
                    "notMNIST autoencoders, and the report built from their runs.",
        epilog="Data: --data-root PATH, else $CNNLAB_DATA, else ~/.cache/cnnlab. Runs: ./runs (or $CNNLAB_RUNS).",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in GROUPS.items():
        if name != wanted:
            # Listed in --help but not loaded: a group's module imports torch and Lightning (seconds),
            # which `cnnlab --help` and `cnnlab --version` do not need.
            sub.add_parser(name, help=help_text)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue  # group not built yet
        mod.add_commands(sub, name, help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        (getattr(args, "group_parser", None) or parser).print_help()
        return 0
    try:
        return int(func(args) or 0)
    except CnnlabError as e:
        print(f"cnnlab: error: {e}", file=sys.stderr)
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
