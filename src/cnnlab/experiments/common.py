"""What the exercise modules share: opening a run folder (also inside DDP workers), reading the config a
run folder recorded, reusing finished runs of the same config, and reading comparison presets."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from cnnlab import config as cfgmod
from cnnlab.errors import CheckpointError, ConfigError, TrainingDiverged
from cnnlab.paths import runs_root
from cnnlab import files
from cnnlab.runs import (DATA_FINGERPRINT, environment, is_diverged, is_finished, new_run_dir, read_summary,
                         recorded_fingerprint, write_summary)
from cnnlab.train.checkpoint import read_checkpoint, recorded_state
from cnnlab.train.engine import check_hardware, child_of_launcher, release_memory
from cnnlab.experiments.configs import name_of, run_name
from cnnlab.train.options import RunOptions

T = TypeVar("T")

# Keys that say how to run, not what to run: two configs differing only here describe the same run.
HOW_NOT_WHAT = ("run.name", "run.runs_dir", "run.progress", "run.resume", "run.force", "run.logger",
                "data.data_dir", "data.data_root", "data.eval_batch_size")

# Settings that a resume may change (training longer, or stopping earlier); config.yaml records them.
RESUME_MAY_CHANGE = ("optim.epochs", "optim.early_stopping_patience")


def open_run(exercise: str, cfg: Any, run: RunOptions, data_fingerprint: str = "") -> Path:
    """The run folder for ``cfg`` (named ``run.name``, else by the config: see ``name_of``), with
    ``config.yaml`` and the ``data_fingerprint`` of the data it trains on written. A DDP worker started by
    Lightning's launcher re-runs our command, so it must reuse the folder its parent chose
    (``CNNLAB_RUN_DIR``).

    A resume is checked before anything is written (see ``check_resume``), so a refused resume
    changes nothing in the run folder.
    """
    inherited = os.environ.get("CNNLAB_RUN_DIR")
    if inherited and child_of_launcher():
        return Path(inherited)
    if getattr(cfg, "hardware", None) is not None:
        check_hardware(cfg.hardware)  # before the folder exists: a refused setting leaves nothing behind
    run_dir = new_run_dir(exercise, name_of(cfg), runs_dir=run.runs_dir or None, force=run.force, resume=run.resume)
    if run.resume:
        check_resume(cfg, run_dir, data_fingerprint)
    os.environ["CNNLAB_RUN_DIR"] = str(run_dir)
    cfgmod.save(cfg, run_dir / "config.yaml")
    if data_fingerprint:
        files.write_text(run_dir / DATA_FINGERPRINT, data_fingerprint + "\n")
    return run_dir


def check_resume(cfg: Any, run_dir: Path, data_fingerprint: str = "") -> None:
    """Refuse a resume that could not continue ``run_dir`` truthfully.

    Raises:
        CheckpointError: ``last.ckpt`` is truncated, corrupt or unsafe.
        ConfigError: the command changes a setting other than ``RESUME_MAY_CHANGE`` (the run would
            no longer be what its config.yaml says), or the data is another copy than the one the run
            began on, or the run was begun by an earlier cnnlab (which drew its splits otherwise).
    """
    last = run_dir / "checkpoints" / "last.ckpt"
    if data_fingerprint and last.is_file():
        recorded = recorded_fingerprint(run_dir)
        if recorded is None:
            raise ConfigError(f"resume: {run_dir} was begun by an earlier cnnlab, which drew its train/val/test "
                              f"subsets differently; start a new run without --resume (or --force)")
        if recorded != data_fingerprint:
            raise ConfigError(f"resume: {run_dir} was begun on another copy of the data (fingerprint {recorded}, "
                              f"now {data_fingerprint}); point --data-dir at that copy, or start a new run")
    if last.is_file() and not recorded_state(read_checkpoint(last, mmap=True)):
        raise CheckpointError(f"{last}: written by an older cnnlab, without the record a resume needs to keep "
                              f"its logs and best.ckpt true; start over with --force (or another --name)")
    changes = config_changes(cfg, run_dir, ignore=HOW_NOT_WHAT + RESUME_MAY_CHANGE)
    if changes is None:
        raise ConfigError(f"resume: cannot read {run_dir / 'config.yaml'} as a config of this command, so "
                          f"cannot check the run would continue as it began; start a new run without --resume")
    changed = [f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items()]
    if changed:
        raise ConfigError(f"resume: {run_dir} was trained with other settings ({'; '.join(changed)}); only "
                          f"{', '.join(RESUME_MAY_CHANGE)} may change on a resume: drop the other settings, or "
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
        recorded = recorded_config(type(cfg), run_dir)
    except ConfigError:
        return None  # unreadable, or written by a cnnlab whose keys this one does not know
    return {k: (recorded.get(k), v) for k, v in cfgmod.flat_dict(cfg).items()
            if k not in ignore and recorded.get(k) != v}


def recorded_config(cls: type, run_dir: Path) -> dict[str, Any]:
    """The keys ``run_dir/config.yaml`` recorded, as {dotted key: value} of ``cls`` (files of earlier
    versions too: flat keys, retired keys; see ``config``). A key the file lacks is absent, not defaulted:
    a run made before a setting existed is not known to have had its default.

    Raises:
        ConfigError: the file is missing or unreadable, or holds keys ``cls`` does not know.
    """
    path = run_dir / "config.yaml"
    try:
        return cfgmod.flatten(cls, cfgmod.retired(cls, cfgmod.read_yaml(path)))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def same_run(cfg: Any, run_dir: Path) -> bool:
    """True when ``run_dir`` was made from a config equal to ``cfg`` in everything that matters."""
    return config_changes(cfg, run_dir, ignore=HOW_NOT_WHAT) == {}


def reuse_or_resume(exercise: str, cfg: T, fingerprint: Callable[[T], str] | None = None) -> tuple[T, Path | None]:
    """For comparisons: a finished run of the same config is reused (its folder is returned); an
    unfinished one is resumed (the config gains ``resume=True``); otherwise a new run is made.

    The data is part of what a run is: with ``fingerprint`` (the fingerprint of the data source ``cfg``
    reads), a finished run is reused only when its summary recorded that same ``data_fingerprint``."""
    base = runs_root(cfg.run.runs_dir or None) / exercise  # type: ignore[attr-defined]
    candidates = sorted(base.glob(f"{name_of(cfg)}*")) if base.is_dir() else []
    wanted: str | None = None
    for run_dir in candidates:
        if not same_run(cfg, run_dir):
            continue
        if is_finished(run_dir):
            if fingerprint is not None:
                wanted = wanted or fingerprint(cfg)
                recorded = read_summary(run_dir).get("data_fingerprint")
                if recorded != wanted:
                    print(f"cnnlab: not reusing {run_dir}: it was trained on "
                          f"{'another copy of the data' if recorded else 'data of unrecorded origin'}",
                          file=sys.stderr)
                    continue
            return cfg, run_dir
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            if fingerprint is not None and recorded_fingerprint(run_dir) != (wanted := wanted or fingerprint(cfg)):
                print(f"cnnlab: not resuming {run_dir}: it was begun on other data or by an earlier cnnlab",
                      file=sys.stderr)
                continue
            return cfgmod.replace(cfg, {"run.name": run_dir.name, "run.resume": True}), None
    return cfg, None


def reused(finished: Path | None, make: Callable[[], Path]) -> Path:
    """``finished`` (said in one line) when there is one, else ``make()``: every command that reuses runs."""
    if finished is not None:
        print(f"cnnlab: reusing finished run {finished}")
        return finished
    return make()


def trained(exercise: str, cfg: Any, train: Callable[[Any], Path],
            fingerprint: Callable[[Any], str] | None = None) -> Path:
    """The folder of ``cfg``'s run: finished (reused), interrupted (resumed) or new (see ``reuse_or_resume``)."""
    cfg, finished = reuse_or_resume(exercise, cfg, fingerprint)
    return reused(finished, lambda: train(cfg))


def run_or_reuse(exercise: str, cfg: Any, train: Callable[[Any], Path],
                 fingerprint: Callable[[Any], str] | None = None) -> dict[str, Any]:
    """For comparisons: the summary of ``cfg``'s run, reused when finished (on the same data, see
    ``reuse_or_resume``), resumed when interrupted, else trained. A run that diverges is reported in one
    line and its diverged summary returned, so the comparison goes on and shows it as diverged."""
    try:
        run_dir = trained(exercise, cfg, train, fingerprint)
    except TrainingDiverged as e:
        print(f"cnnlab: {name_of(cfg)}: {e}", file=sys.stderr)
        run_dir = e.run_dir
    finally:
        release_memory()  # what this run freed, before the next one allocates its own
    return read_summary(run_dir)


def check_split_drawn_alike(summary: dict[str, Any], run_dir: Path, split: str) -> None:
    """Runs of earlier versions drew their train and val subsets otherwise: only their test split (drawn
    then as now) can be scored again. (Their summaries lack ``data_fingerprint``.)

    Raises:
        ConfigError: ``split`` is train or val of such a run.
    """
    if split != "test" and "data_fingerprint" not in summary:
        raise ConfigError(f"{run_dir} was trained by an earlier cnnlab, which drew its train and val subsets "
                          f"otherwise: only --split test scores the images it was scored on")


def recorded_summary(run_dir: Path, exercise: str) -> dict[str, Any]:
    """The summary of a finished run of ``exercise`` (for re-scoring it).

    Raises:
        ConfigError: not a run folder, a run of another exercise, or an unfinished or diverged run.
    """
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.yaml)")
    if not is_finished(run_dir):
        raise ConfigError(f"{run_dir}: the run did not finish (no summary.json of a finished run): nothing to score")
    summary = read_summary(run_dir)
    if is_diverged(summary):
        raise ConfigError(f"{run_dir}: the run diverged: it has no result to score")
    if summary.get("exercise") != exercise:
        raise ConfigError(f"{run_dir}: a run of {summary.get('exercise')!r}, not of {exercise!r}: use "
                          f"`cnnlab {summary.get('exercise')} evaluate`")
    return summary


def preset_run(cls: type[T], defaults: dict[str, Any], entry: dict[str, Any], overrides: dict[str, Any],
               seed: int | None = None) -> T:
    """One run of a comparison preset: the preset's defaults, the entry's keys, then ``overrides`` (any key
    spelling; mappings merge), at ``seed`` when given; named by the one scheme (``run_name``): the entry's
    name, its data sizes, its seed.

    Raises:
        ConfigError: a bad key or value, naming the entry.
    """
    name = str(entry["name"])
    layers = [defaults, {k: v for k, v in entry.items() if k != "name"}, overrides]
    try:
        flat = cfgmod.merge(cls, *(cfgmod.flatten(cls, layer) for layer in layers))
        if seed is not None:
            flat["run.seed"] = seed
        cfg = cfgmod.build(cls, flat)
        return cfgmod.replace(cfg, {"run.name": run_name(name, cfg.run.seed, **cfg.sizes())})
    except ConfigError as e:
        raise ConfigError(f"run {name!r}: {e}") from None


# Preset files of earlier versions (configs/cifar/table1-quick.yaml, ...), now shipped under these names.
SHIPPED_AS = {"cifar": {"table1-quick": "quick", "table1": "full"}, "food": {"compare-quick": "quick", "compare": "full"}}


def preset_path(kind: str, preset: str | Path) -> Path:
    """A preset shipped with cnnlab (``cnnlab/presets/<kind>/<name>.yaml``) or a YAML file's path.

    Raises:
        ConfigError: neither a known preset name nor an existing .yaml file (lists the known names).
    """
    candidate = Path(preset).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if candidate.is_file():
            return candidate
        if candidate.stem not in SHIPPED_AS.get(kind, {}):
            raise ConfigError(f"preset file not found: {candidate}")
        preset = SHIPPED_AS[kind][candidate.stem]  # configs/<kind>/<old name>.yaml of earlier versions
    shipped = resources.files("cnnlab") / "presets" / kind
    path = Path(str(shipped / f"{preset}.yaml"))
    if path.is_file():
        return path
    known = known_presets(kind)
    raise ConfigError(f"unknown {kind} preset {str(preset)!r}{cfgmod.did_you_mean(str(preset), known)}; "
                      f"known: {', '.join(known)} (or a path to a .yaml file)")


def known_presets(kind: str) -> list[str]:
    """Names of the presets of ``kind`` shipped with cnnlab."""
    folder = Path(str(resources.files("cnnlab") / "presets" / kind))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def read_compare_config(kind: str, preset: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A comparison preset: ``defaults:`` (config keys for every run) and ``runs:`` (a non-empty list of
    mappings, each with a ``name`` and its own keys). Keys are checked later, per run, by its config class."""
    path = preset_path(kind, preset)
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
