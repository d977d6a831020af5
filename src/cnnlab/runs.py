"""The run-folder contract shared by every exercise.

    runs/<exercise>/<name>/
        config.yaml            resolved config of the run
        metrics.csv            one row per epoch
        checkpoints/best.ckpt  best by the monitored metric (the last epoch when none is monitored)
        checkpoints/last.ckpt  the last finished epoch, for --resume
        data_fingerprint       the fingerprint of the data source it trains on (written when it starts)
        summary.json           the numbers tables and the report are built from (see REQUIRED)

A run name that exists is never reused silently: a suffix is added (``name-2``), unless the caller
asks to ``force`` (start over) or ``resume`` (continue in place).
"""

from __future__ import annotations

import re

import json
import math
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from cnnlab import files
from cnnlab.errors import CnnlabError
from cnnlab.paths import runs_root

REQUIRED = ("name", "exercise", "params", "epochs", "best_epoch", "wall_time_s")
CLASSIFIER_METRICS = ("train_acc", "test_acc")  # fractions in [0, 1]
AUTOENCODER_METRICS = ("test_mse", "test_psnr")  # MSE on [0, 1] pixels; PSNR in dB
SSL_METRICS = ("loss_first", "loss_last")  # the self-supervised loss of its first and last epochs


def new_run_dir(exercise: str, name: str, *, runs_dir: str | Path | None = None,
                force: bool = False, resume: bool = False) -> Path:
    """Create (or, with ``resume``, reopen) ``runs/<exercise>/<name>`` and return it.

    The folder is created atomically: when the name is taken (also by a process starting at the same
    moment), the next free suffix is used (``name-2``, ``name-3``...), unless ``force`` replaces it.

    Raises:
        CnnlabError: an invalid name, or ``resume`` of a run that does not exist.
        DiskError: the runs folder cannot be written.
    """
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*", name or ""):
        raise CnnlabError(f"invalid run name {name!r}: use letters, digits, '-', '_', '.', '+' and '=' "
                          f"(no spaces, not starting with '.' or '-')")
    base = files.make_dirs(runs_root(runs_dir) / exercise)
    run = base / name
    if resume:
        if not run.is_dir():
            raise CnnlabError(f"--resume: there is no run {run} to continue (check --name and --runs-dir)")
        return run
    if force and run.exists():
        with files.translated(run, "replace"):
            shutil.rmtree(run)
    n = 1
    while True:
        candidate = run if n == 1 else base / f"{name}-{n}"
        try:
            with files.translated(candidate, "create"):
                candidate.mkdir()
            break
        except FileExistsError:
            n += 1
    if candidate != run:
        print(f"cnnlab: run {run} exists; writing to {candidate} instead (use --force to replace it, "
              f"--resume to continue it)", file=sys.stderr)
    return candidate


DATA_FINGERPRINT = "data_fingerprint"


def recorded_fingerprint(run_dir: Path) -> str | None:
    """The data fingerprint a run recorded when it started (None: a run of an earlier version)."""
    try:
        return (Path(run_dir) / DATA_FINGERPRINT).read_text().strip() or None
    except OSError:
        return None


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a finished run is scored and reused by: ``checkpoints/best.ckpt`` (the epoch its
    monitor chose, or its last epoch when it monitored nothing)."""
    return Path(run_dir) / "checkpoints" / "best.ckpt"


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "summary.json").is_file()


def is_diverged(summary: dict[str, Any]) -> bool:
    """True for a run stopped by a NaN or infinite loss: it has no result to show."""
    return summary.get("status") == "diverged"


def check_summary(summary: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED if k not in summary]
    if is_diverged(summary):
        if missing:
            raise ValueError(f"summary.json lacks {', '.join(missing)}")
        return
    if summary.get("kind") == "ssl":
        kind = SSL_METRICS
    else:
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
    """Check ``summary`` (see ``REQUIRED``) and write it atomically; ``status`` defaults to finished."""
    summary = {"status": "finished", **summary}
    check_summary(summary)
    return files.write_text(Path(run_dir) / "summary.json", json.dumps(_json_safe(summary), indent=2))


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
