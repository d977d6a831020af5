"""The main job: every exercise of a preset, then the report.

    cnnlab lab --preset quick|full|PATH.yaml [--data-root PATH] [--runs-dir runs/]

Resumable: finished runs are reused, an interrupted run continues from its last checkpoint, so a killed
``cnnlab lab`` started again loses no finished work. Ends by printing where the report is.

A lab preset (``cnnlab/presets/lab/*.yaml``) has one section per exercise: ``cifar`` and ``food`` name a
comparison preset (``preset``, ``seeds``, and ``overrides``: config keys for every run; ``food`` also a
data-size ``sweep`` preset), ``notmnist`` the
config keys of each step (``ae``, ``sweep``, ``svm``, ``denoise``), ``report`` its ``out`` folder, and
``submission`` (``execute``: run the notebooks; ``settings``: their ``CNNLAB_NB_*`` variables) the zip the
sheet asks for (see ``report.submission``).
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from pathlib import Path
from typing import Any

from cnnlab import config as cfgmod
from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.experiments.common import preset_path, trained
from cnnlab.experiments.configs import CompareOptions, LabConfig, SeededCompareOptions
from cnnlab.paths import runs_root
from cnnlab.train.engine import release_memory

SECTIONS = ("cifar", "food", "notmnist", "report", "submission")
COMPARE_KEYS = {"cifar": ("preset", "seeds", "overrides"), "food": ("preset", "overrides", "sweep")}
LEGACY_KEYS = {"config": "preset", "set": "overrides"}  # a section's keys in lab presets of earlier versions
NOTMNIST_STEPS = ("ae", "sweep", "svm", "denoise", "ssl", "features")


def read_preset(path: Path) -> dict[str, Any]:
    """A lab preset, its sections and steps checked (``ConfigError`` naming the unknown one)."""
    preset = cfgmod.read_yaml(path)
    for name in COMPARE_KEYS:
        if isinstance(preset.get(name), dict):
            preset[name] = {LEGACY_KEYS.get(k, k): v for k, v in preset[name].items()}
    checks = [("section", set(preset), SECTIONS)]
    checks += [(f"{name} key", set(preset.get(name) or {}), keys) for name, keys in COMPARE_KEYS.items()]
    checks += [("notmnist step", set(preset.get("notmnist") or {}), NOTMNIST_STEPS)]
    checks += [("submission key", set(preset.get("submission") or {}), ("execute", "settings"))]
    for what, found, expected in checks:
        unknown = sorted(found - set(expected))
        if unknown:
            raise ConfigError(f"{path}: unknown {what}(s) {', '.join(unknown)}"
                              f"{cfgmod.did_you_mean(unknown[0], expected)} (expected {', '.join(expected)})")
    return preset


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


class StepClock:
    """Wall time of each step of the lab, and the process's peak memory once it has ended (a peak
    that grows at a step was set by that step), printed as each ends and as a table at the end."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float, float]] = []

    @contextlib.contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            release_memory()
            seconds, peak = time.perf_counter() - started, peak_rss_gb()
            self.steps.append((name, seconds, peak))
            print(f"cnnlab lab: {name} took {seconds / 60:.1f} min; peak memory so far {peak:.2f} GB",
                  file=sys.stderr, flush=True)

    def table(self) -> str:
        width = max((len(name) for name, _, _ in self.steps), default=0)
        return "\n".join(f"  {name:<{width}}  {seconds / 60:6.1f} min  peak {peak:5.2f} GB"
                         for name, seconds, peak in self.steps)


def run_compare(exercise: str, section: dict[str, Any], runs_dir: str, common: dict[str, Any],
                clock: StepClock) -> None:
    from importlib import import_module

    module = import_module(f"cnnlab.experiments.{exercise}")
    preset = str(section.get("preset", "quick"))
    options = (SeededCompareOptions(preset, runs_dir, seeds=int(section.get("seeds", 1))) if exercise == "cifar"
               else CompareOptions(preset, runs_dir))
    # The lab's own settings (data root, bars) win over a section's: --data-root decides where data comes from.
    overrides = {**(section.get("overrides") or {}), **common}
    with clock.step(f"{exercise} compare"):
        module.compare(options, overrides=overrides)
    if section.get("sweep"):  # Food's data-size sweep (its own preset)
        from cnnlab.experiments.configs import SweepOptions

        with clock.step(f"{exercise} sweep"):
            module.sweep(SweepOptions(str(section["sweep"]), runs_dir), overrides=overrides)


def run_notmnist(section: dict[str, Any], runs_dir: str, common: dict[str, Any], clock: StepClock) -> None:
    from cnnlab.experiments import configs
    from cnnlab.experiments import notmnist as nm

    def make(cls, key):
        return cfgmod.build(cls, cfgmod.merge(cls, cfgmod.flatten(cls, section.get(key) or {}), cfgmod.flatten(cls, common),
                                              {"run.runs_dir": runs_dir}))

    from cnnlab.experiments import notmnist_features as nf

    steps = {"ae": lambda: nm.trained_ae(make(configs.AEConfig, "ae")),
             "sweep": lambda: nm.sweep(make(configs.SweepConfig, "sweep")),
             "svm": lambda: nm.svm_or_reuse(make(configs.SvmConfig, "svm")),
             "denoise": lambda: trained("notmnist", make(configs.DenoiseConfig, "denoise"), nm.denoise,
                                        nm.data_fingerprint),
             "ssl": lambda: nf.ssl_or_reuse(make(configs.SslConfig, "ssl")),
             # after ae, denoise and ssl: it probes their encoders
             "features": lambda: nf.features_or_reuse(make(configs.FeaturesConfig, "features"))}
    for name, step in steps.items():
        if name in section:
            with clock.step(f"notmnist {name}"):
                step()


def lab(cfg: LabConfig) -> Path:
    """Run every exercise of ``cfg.preset`` (reusing finished runs), then build the report; returns its page.

    Raises:
        ConfigError: unknown preset, section or key. TrainingDiverged: some run diverged (the others,
            and the report, still ran).
    """
    path = preset_path("lab", cfg.preset)
    spec = read_preset(path)
    runs_dir = str(runs_root(cfg.runs_dir or None))
    # The data root decides where data comes from: a preset's own data_dir would override it.
    common = {"data.data_dir": "", "run.progress": cfg.progress}
    if cfg.data_root:
        common["data.data_root"] = str(Path(cfg.data_root).expanduser().resolve())
    clock = StepClock()
    runners = {"cifar": lambda s: run_compare("cifar", s, runs_dir, common, clock),
               "food": lambda s: run_compare("food", s, runs_dir, common, clock),
               "notmnist": lambda s: run_notmnist(s, runs_dir, common, clock)}
    started = time.perf_counter()
    diverged = []
    for name, runner in runners.items():
        if name in spec and (not cfg.only or name in cfg.only):
            print(f"\n=== {name} ({path.name}) ===", flush=True)
            try:
                runner(spec[name] or {})
            except TrainingDiverged as e:  # the other exercises and the report still run
                print(f"cnnlab: {name}: {e}", file=sys.stderr)
                diverged.append(name)
    from cnnlab.report.build import build

    out = (spec.get("report") or {}).get("out", "reports/lab")
    with clock.step("report"):
        page, md = build(runs_dir, out)
    if cfg.submission:
        from cnnlab.report.submission import write_submission

        section = spec.get("submission") or {}
        settings = {str(k): str(v) for k, v in (section.get("settings") or {}).items()}
        if cfg.data_root:
            settings["CNNLAB_DATA"] = str(Path(cfg.data_root).expanduser().resolve())
        execute = bool(section.get("execute", True)) and cfg.notebooks
        with clock.step("submission" + (" (notebooks run)" if execute else "")):
            zipped = write_submission(Path(out), settings=settings, execute=execute)
    print(f"\nlab finished in {(time.perf_counter() - started) / 60:.1f} min, by step:\n{clock.table()}"
          f"\nreport: {page.resolve()}\n        {md.resolve()}")
    if cfg.submission:
        print(f"submission: {zipped.resolve()}")
    if diverged:
        raise TrainingDiverged(f"runs of {', '.join(diverged)} diverged; the report shows them as diverged ({page})")
    return page


def cmd_lab(cfg: LabConfig) -> int:
    unknown = sorted(set(cfg.only) - {"cifar", "food", "notmnist"})
    if unknown:
        raise ConfigError(f"only: unknown exercise {unknown[0]!r}{cfgmod.did_you_mean(unknown[0], ['cifar', 'food', 'notmnist'])}"
                          f" (expected cifar, food, notmnist)")
    lab(cfg)
    return 0
