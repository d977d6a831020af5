"""The main job: every exercise of a preset, then the report.

    cnnlab lab --preset quick|full|PATH.yaml [--data-root PATH] [--runs-dir runs/]

Resumable: finished runs are reused, an interrupted run continues from its last checkpoint, so a killed
``cnnlab lab`` started again loses no finished work. Ends by printing where the report is.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from cnnlab import config as cfgmod
from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.experiments.common import reuse_or_resume, same_run
from cnnlab.paths import runs_root
from cnnlab.runs import is_finished

SECTIONS = ("cifar", "food", "notmnist", "report")
NOTMNIST_STEPS = ("ae", "sweep", "svm", "denoise")
REPO_ROOT = Path(__file__).resolve().parents[2]


def preset_path(preset: str) -> Path:
    """A preset name (``quick``, ``full``) or a YAML path; relative config paths in it are looked up in
    the current folder first, then in the project's own folder."""
    candidate = Path(preset)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ConfigError(f"preset file not found: {candidate}")
        return candidate
    for base in (Path.cwd(), REPO_ROOT):
        path = base / "configs" / "lab" / f"{preset}.yaml"
        if path.is_file():
            return path
    known = sorted(p.stem for p in (REPO_ROOT / "configs" / "lab").glob("*.yaml"))
    raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(known)} (or a path to a .yaml file)")


def read_preset(path: Path) -> dict[str, Any]:
    preset = cfgmod.read_yaml(path)
    unknown = set(preset) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))} (expected {', '.join(SECTIONS)})")
    steps = set(preset.get("notmnist") or {}) - set(NOTMNIST_STEPS)
    if steps:
        raise ConfigError(f"{path}: unknown notmnist step(s) {', '.join(sorted(steps))} (expected {', '.join(NOTMNIST_STEPS)})")
    return preset


def resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() or p.exists() else REPO_ROOT / p


def run_cifar(section: dict[str, Any], runs_dir: str, common: dict[str, Any]) -> None:
    from cnnlab.experiments import cifar

    cifar.compare(resolve(section["config"]), seeds=int(section.get("seeds", 1)),
                  overrides={**common, **(section.get("set") or {})}, runs_dir=runs_dir)


def run_food(section: dict[str, Any], runs_dir: str, common: dict[str, Any]) -> None:
    from cnnlab.experiments import food

    food.compare(resolve(section["config"]), overrides={**common, **(section.get("set") or {})}, runs_dir=runs_dir)


def run_notmnist(section: dict[str, Any], runs_dir: str, common: dict[str, Any]) -> None:
    from cnnlab.experiments import notmnist as nm

    def make(cls, key):
        return cfgmod.from_dict(cls, {**common, **(section.get(key) or {}), "runs_dir": runs_dir})

    if "ae" in section:
        nm.trained_ae(make(nm.AEConfig, "ae"))
    if "sweep" in section:
        nm.sweep(make(nm.SweepConfig, "sweep"))
    if "svm" in section:
        cfg = make(nm.SvmConfig, "svm")
        done = [p for p in sorted((runs_root(runs_dir) / "notmnist").glob(f"{cfg.name}*"))
                if is_finished(p) and same_run(cfg, p)]
        if done:
            print(f"cnnlab: reusing finished run {done[0]}")
        else:
            nm.svm(cfg)
    if "denoise" in section:
        cfg, finished = reuse_or_resume("notmnist", make(nm.DenoiseConfig, "denoise"))
        if finished is not None:
            print(f"cnnlab: reusing finished run {finished}")
        else:
            nm.denoise(cfg)


RUNNERS = {"cifar": run_cifar, "food": run_food, "notmnist": run_notmnist}


def lab(preset: str, data_root: str | None = None, runs_dir: str | None = None, progress: bool = True,
        only: list[str] | None = None) -> Path:
    path = preset_path(preset)
    spec = read_preset(path)
    if data_root:
        os.environ["CNNLAB_DATA"] = str(Path(data_root).expanduser().resolve())
    runs_dir = str(runs_root(runs_dir))
    # The data root decides where data comes from: a preset's own data_dir would override it.
    common = {"data_dir": "", "progress": progress}
    started = time.perf_counter()
    diverged = []
    for name, runner in RUNNERS.items():
        if name in spec and (not only or name in only):
            print(f"\n=== {name} ({path.name}) ===", flush=True)
            try:
                runner(spec[name] or {}, runs_dir, common)
            except TrainingDiverged as e:  # the other exercises and the report still run
                print(f"cnnlab: {name}: {e}", file=sys.stderr)
                diverged.append(name)
    from cnnlab.report.build import build

    out = (spec.get("report") or {}).get("out", "reports/lab")
    page, md = build(runs_dir, out)
    print(f"\nlab finished in {(time.perf_counter() - started) / 60:.1f} min\nreport: {page.resolve()}\n        {md.resolve()}")
    if diverged:
        raise TrainingDiverged(f"runs of {', '.join(diverged)} diverged; the report shows them as diverged ({page})")
    return page


def cmd_lab(args: argparse.Namespace) -> int:
    lab(args.preset, args.data_root, args.runs_dir, progress=args.progress, only=args.only)
    return 0


def add_commands(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="quick, full, or a preset YAML file [default: quick]")
    p.add_argument("--data-root", default=None, help="folder holding the datasets in any accepted form "
                                                      "[default: $CNNLAB_DATA, else ~/.cache/cnnlab]")
    p.add_argument("--runs-dir", default=None, help="folder holding the runs [default: ./runs]")
    p.add_argument("--only", action="append", choices=list(RUNNERS), help="run only this exercise (repeatable); "
                                                                          "the report is always rebuilt")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    p.set_defaults(func=cmd_lab)
