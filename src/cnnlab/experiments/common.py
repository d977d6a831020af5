"""What the exercise modules share: opening a run folder (also inside DDP workers), reusing finished
runs of the same config, and building a command's flags from its config class."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cnnlab import config as cfgmod
from cnnlab.errors import ConfigError
from cnnlab.train.engine import child_of_launcher
from cnnlab.train.runs import is_finished, new_run_dir
from cnnlab.paths import runs_root

T = TypeVar("T")

# Fields that say how to run, not what to run: two configs differing only here describe the same run.
HOW_NOT_WHAT = ("name", "runs_dir", "progress", "resume", "force", "data_dir", "data_root", "logger")


def open_run(exercise: str, cfg: Any) -> Path:
    """The run folder for ``cfg``. A DDP worker started by Lightning's launcher re-runs our command,
    so it must reuse the folder its parent chose (passed down in ``CNNLAB_RUN_DIR``)."""
    inherited = os.environ.get("CNNLAB_RUN_DIR")
    if inherited and child_of_launcher():
        return Path(inherited)
    run_dir = new_run_dir(exercise, cfg.name, runs_dir=cfg.runs_dir or None, force=cfg.force, resume=cfg.resume)
    os.environ["CNNLAB_RUN_DIR"] = str(run_dir)
    cfgmod.save(cfg, run_dir / "config.yaml")
    return run_dir


def same_run(cfg: Any, run_dir: Path) -> bool:
    """True when ``run_dir`` was made from a config equal to ``cfg`` in everything that matters."""
    try:
        recorded = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    wanted = cfgmod.to_dict(cfg)
    return all(recorded.get(k) == v for k, v in wanted.items() if k not in HOW_NOT_WHAT)


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


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, std


def fmt_pct(values: list[float]) -> str:
    """Accuracies (fractions) as '91.2' or, over several seeds, '91.2 ± 0.3'."""
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.1f} ± {std:.1f}" if len(values) > 1 else f"{mean:.1f}"
