"""The run-folder contract shared by every exercise.

    runs/<exercise>/<name>/
        config.yaml            resolved config of the run
        metrics.csv            one row per epoch
        checkpoints/best.ckpt  best by the monitored metric; checkpoints/last.ckpt for --resume
        summary.json           the numbers tables and the report are built from (see REQUIRED)

A run name that exists is never reused silently: a suffix is added (``name-2``), unless the caller
asks to ``force`` (start over) or ``resume`` (continue in place).
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.paths import runs_root

REQUIRED = ("name", "exercise", "params", "epochs", "best_epoch", "wall_time_s")
CLASSIFIER_METRICS = ("train_acc", "test_acc")  # fractions in [0, 1]
AUTOENCODER_METRICS = ("test_mse", "test_psnr")  # MSE on [0, 1] pixels; PSNR in dB


def new_run_dir(exercise: str, name: str, *, runs_dir: str | Path | None = None,
                force: bool = False, resume: bool = False) -> Path:
    """Create (or, with ``resume``, reopen) ``runs/<exercise>/<name>`` and return it."""
    if not name or "/" in name or name.startswith("."):
        raise CnnlabError(f"invalid run name {name!r}: use letters, digits, '-' and '_'")
    base = runs_root(runs_dir) / exercise
    run = base / name
    if run.exists():
        if resume:
            return run
        if force:
            shutil.rmtree(run)
        else:
            n = 2
            while (base / f"{name}-{n}").exists():
                n += 1
            run = base / f"{name}-{n}"
            print(f"cnnlab: run {base / name} exists; writing to {run} instead (use --force to replace it, "
                  f"--resume to continue it)", file=sys.stderr)
    run.mkdir(parents=True)
    return run


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "summary.json").is_file()


def check_summary(summary: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED if k not in summary]
    kind = CLASSIFIER_METRICS if "train_acc" in summary or "test_acc" in summary else AUTOENCODER_METRICS
    missing += [k for k in kind if k not in summary]
    if missing:
        raise ValueError(f"summary.json lacks {', '.join(missing)}")
    for key in CLASSIFIER_METRICS:
        if key in summary and not (0.0 <= float(summary[key]) <= 1.0):
            raise ValueError(f"summary {key}={summary[key]} is not a fraction in [0, 1]")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    check_summary(summary)
    path = Path(run_dir) / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_json_safe(summary), indent=2))
    tmp.replace(path)  # atomic: a reader never sees half a summary
    return path


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CnnlabError(f"{path}: no summary (the run did not finish)") from None
    except json.JSONDecodeError as e:
        raise CnnlabError(f"{path}: corrupt summary ({e})") from None


def find_runs(exercise: str, runs_dir: str | Path | None = None) -> list[Path]:
    base = runs_root(runs_dir) / exercise
    return sorted(p for p in base.glob("*/") if is_finished(p)) if base.is_dir() else []


def environment() -> dict[str, Any]:
    """Where and with what a run was made: goes into every summary for provenance."""
    import lightning
    import torch
    import torchvision

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {
        "device": device,
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
    }
