"""What the exercise modules share: opening a run folder (also inside DDP workers), reusing finished
runs of the same config, and building a command's flags from its config class."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cnnlab import config as cfgmod
from cnnlab.errors import CheckpointError, ConfigError, TrainingDiverged
from cnnlab.train.checkpoint import read_checkpoint, recorded_state
from cnnlab.train.engine import child_of_launcher
from cnnlab.runs import environment, is_finished, new_run_dir, read_summary, write_summary
from cnnlab.paths import runs_root

T = TypeVar("T")

# Fields that say how to run, not what to run: two configs differing only here describe the same run.
HOW_NOT_WHAT = ("name", "runs_dir", "progress", "resume", "force", "data_dir", "data_root", "logger")


# Settings that a resume may change (training longer, or stopping earlier); config.yaml records them.
RESUME_MAY_CHANGE = ("epochs", "early_stopping_patience")


def open_run(exercise: str, cfg: Any) -> Path:
    """The run folder for ``cfg``, with ``config.yaml`` written. A DDP worker started by Lightning's
    launcher re-runs our command, so it must reuse the folder its parent chose (``CNNLAB_RUN_DIR``).

    A resume is checked before anything is written (see ``check_resume``), so a refused resume
    changes nothing in the run folder.
    """
    inherited = os.environ.get("CNNLAB_RUN_DIR")
    if inherited and child_of_launcher():
        return Path(inherited)
    run_dir = new_run_dir(exercise, cfg.name, runs_dir=cfg.runs_dir or None, force=cfg.force, resume=cfg.resume)
    if cfg.resume:
        check_resume(cfg, run_dir)
    os.environ["CNNLAB_RUN_DIR"] = str(run_dir)
    cfgmod.save(cfg, run_dir / "config.yaml")
    return run_dir


def check_resume(cfg: Any, run_dir: Path) -> None:
    """Refuse a resume that could not continue ``run_dir`` truthfully.

    Raises:
        CheckpointError: ``last.ckpt`` is truncated, corrupt or unsafe.
        ConfigError: the command changes a setting other than ``RESUME_MAY_CHANGE`` (the run would
            no longer be what its config.yaml says).
    """
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file() and not recorded_state(read_checkpoint(last, mmap=True)):
        raise CheckpointError(f"{last}: written by an older cnnlab, without the record a resume needs to keep "
                              f"its logs and best.ckpt true; start over with --force (or another --name)")
    changes = config_changes(cfg, run_dir, ignore=HOW_NOT_WHAT + RESUME_MAY_CHANGE) or {}
    changed = [f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items()]
    if changed:
        raise ConfigError(f"--resume: {run_dir} was trained with other settings ({'; '.join(changed)}); only "
                          f"{', '.join(RESUME_MAY_CHANGE)} may change on a resume: drop the other flags, or "
                          f"start a new run without --resume")


@contextlib.contextmanager
def diverged_runs_recorded(run_dir: Path, exercise: str, params: int, **describe: Any) -> Iterator[None]:
    """Write ``summary.json`` with ``status: diverged`` (plus ``describe``: what the run was) when
    training inside the block diverges, so that ``compare``, ``lab`` and the report show the run as
    diverged, never as a result. The error is re-raised, with ``run_dir`` set."""
    try:
        yield
    except TrainingDiverged as e:
        info = {"epochs": 0, "best_epoch": 0, "wall_time_s": 0.0, **e.info}
        write_summary(run_dir, {"name": run_dir.name, "exercise": exercise, "status": "diverged", **describe,
                                "params": params, **info, "error": str(e), **environment()})
        e.run_dir = run_dir
        raise


def config_changes(cfg: Any, run_dir: Path, ignore: tuple[str, ...]) -> dict[str, tuple[Any, Any]] | None:
    """The settings of ``cfg`` that differ from ``run_dir/config.yaml``, as (recorded, wanted), leaving
    out ``ignore``; None when the recorded config cannot be read."""
    try:
        recorded = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return {k: (recorded.get(k), v) for k, v in cfgmod.to_dict(cfg).items()
            if k not in ignore and recorded.get(k) != v}


def same_run(cfg: Any, run_dir: Path) -> bool:
    """True when ``run_dir`` was made from a config equal to ``cfg`` in everything that matters."""
    return config_changes(cfg, run_dir, ignore=HOW_NOT_WHAT) == {}


def reuse_or_resume(exercise: str, cfg: T) -> tuple[T, Path | None]:
    """For comparisons: a finished run of the same config is reused (its folder is returned); an
    unfinished one is resumed (the config gains ``resume=True``); otherwise a new run is made."""
    base = runs_root(cfg.runs_dir or None) / exercise  # type: ignore[attr-defined]
    candidates = sorted(base.glob(f"{cfg.name}*")) if base.is_dir() else []  # type: ignore[attr-defined]
    for run_dir in candidates:
        if not same_run(cfg, run_dir):
            continue
        if is_finished(run_dir):
            return cfg, run_dir
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            return cfgmod.replace(cfg, {"name": run_dir.name, "resume": True}), None
    return cfg, None


def run_or_reuse(exercise: str, cfg: Any, train: Callable[[Any], Path]) -> dict[str, Any]:
    """For comparisons: the summary of ``cfg``'s run, reused when finished, resumed when interrupted,
    else trained. A run that diverges is reported in one line and its diverged summary returned, so
    the comparison goes on and shows it as diverged."""
    cfg, finished = reuse_or_resume(exercise, cfg)
    if finished is not None:
        print(f"cnnlab: reusing finished run {finished}")
    try:
        run_dir = finished or train(cfg)
    except TrainingDiverged as e:
        print(f"cnnlab: {cfg.name}: {e}", file=sys.stderr)
        run_dir = e.run_dir
    return read_summary(run_dir)


def command_group(sub: argparse._SubParsersAction, name: str, help_text: str, doc: str | None):
    """The ``cnnlab <group>`` parser (its module docstring as description; alone, it prints its help)
    and the sub-parsers its commands are added to."""
    group = sub.add_parser(name, help=help_text, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(metavar="COMMAND")


def read_compare_config(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A compare config: ``defaults:`` (config keys for every run) and ``runs:`` (a non-empty list of
    mappings, each with a ``name`` and its own keys). Keys are checked later, per run, by its config class."""
    data = cfgmod.read_yaml(path)
    unknown = set(data) - {"defaults", "runs"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (expected defaults, runs)")
    runs = data.get("runs") or []
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) and r.get("name") for r in runs):
        raise ConfigError(f"{path}: 'runs' must be a non-empty list of mappings, each with a name")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: 'defaults' must be a mapping of config keys")
    return dict(defaults), runs


def add_config_file_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="YAML file of config keys; flags override it")


def resolve_config(cls: type[T], args: argparse.Namespace, extra: dict[str, Any] | None = None) -> T:
    overrides = cfgmod.flags_to_overrides(args, cls)
    overrides.update(extra or {})
    return cfgmod.load(cls, getattr(args, "config", None), overrides)


def parse_key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["widths=[32,64]", "dropout=0.1"]`` -> {"widths": [32, 64], "dropout": 0.1} (YAML values)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag}: expected KEY=VALUE, got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{flag}: cannot read the value of {pair!r}") from None
    return out
