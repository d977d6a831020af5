"""What an epoch leaves on disk, written so that a kill at any moment loses nothing.

``EpochRecord`` is the one checkpoint callback every exercise trains with. At the end of each epoch it
writes, in this order:

1. the epoch's row of ``metrics.csv`` (replacing any row of the same or a later epoch left by a killed
   attempt, so every epoch appears once);
2. ``checkpoints/last.ckpt``, which also records the best epoch so far and its monitored value;
3. when the epoch is the new best, ``checkpoints/best.ckpt`` as a copy of ``last.ckpt``. (A run that
   evaluates nothing keeps its last epoch: ``best.ckpt`` is then copied once, when fit ends.)

Each file is written to a temporary name and renamed (``AtomicCheckpointIO``, ``cnnlab.files``). A kill
between 2 and 3 leaves ``last.ckpt`` naming a best epoch that ``best.ckpt`` does not hold yet; a resume
repairs that by copying ``last.ckpt`` over it, since both are that epoch's weights. (Lightning's
``ModelCheckpoint`` writes best before last, and a kill between the two loses the previous best: the
reason this callback is ours.)
"""

from __future__ import annotations

import csv
import io
import math
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cnnlab import files
from cnnlab.errors import CheckpointError

STATE_KEY = "EpochRecord"


# ---- reading checkpoints ------------------------------------------------------------------------------


def read_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint as data only (``weights_only``: tensors and plain containers, never code).

    Raises:
        CheckpointError: the file is missing; truncated or corrupt (with how to go on); or it holds
            objects that only pickle could rebuild, which could run code, so it is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - a damaged file can fail in any way while unpickling
        if isinstance(e, pickle.UnpicklingError) and "unsupported global" in str(e).lower() and _zip_intact(path):
            raise CheckpointError(f"{path}: refusing to load: it holds Python objects that only pickle could "
                                  "rebuild (it could run code); cnnlab checkpoints hold tensors only") from None
        raise CheckpointError(corrupt_message(path, e)) from None
    if not isinstance(state, dict):
        raise CheckpointError(corrupt_message(path, TypeError(f"holds a {type(state).__name__}, not a checkpoint")))
    return state


def _zip_intact(path: Path) -> bool:
    """True when every record of the checkpoint (a zip archive) matches its CRC: a flipped byte can make
    the pickle name a global that does not exist, which must read as damage, not as a threat."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def corrupt_message(path: Path, error: BaseException) -> str:
    reason = (str(error).splitlines() or [type(error).__name__])[0].split(". ")[0]  # its first sentence
    hint = ("the run cannot continue from it: start over with --force (or another --name); "
            "checkpoints/best.ckpt still holds the best epoch so far (a run that monitors nothing writes it "
            "only when it finishes)") if path.name == "last.ckpt" else \
        "retrain the run (--force) to write it again"
    return f"{path}: checkpoint is truncated or corrupt ({reason[:160]}); {hint}"


def load_model_weights(model: torch.nn.Module, ckpt_path: str | Path, prefix: str = "model.") -> torch.nn.Module:
    """Load the ``model.*`` weights of a Lightning checkpoint into ``model`` (every shape checked).

    Raises:
        CheckpointError: see ``read_checkpoint``; or the weights do not fit ``model``.
    """
    state = read_checkpoint(ckpt_path)
    weights = state.get("state_dict", state)
    weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt_path}: weights do not fit this model ({str(e).splitlines()[0]})") from None
    return model


def recorded_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The ``EpochRecord`` state inside a loaded checkpoint ({} for one written without it)."""
    return dict((checkpoint.get("callbacks") or {}).get(STATE_KEY) or {})


# ---- writing checkpoints ------------------------------------------------------------------------------


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but to a temporary file renamed into place (``cnnlab.files``)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        path = Path(path)
        files.make_dirs(path.parent)
        files.torch_save(checkpoint, path)


def copy_atomic(source: Path, target: Path) -> None:
    """``target`` becomes a copy of what ``source`` holds now, or stays as it was (a kill at any moment).
    A copy, not a hard link: a link would make damage to either file, or a user's in-place rewrite of
    one, the loss of both.

    Raises:
        DiskError: the folder is read-only or the disk is full (see ``files.atomic_path``).
    """
    with files.atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


# ---- the per-epoch record ------------------------------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file ([], [] when it does not exist)."""
    if not path.is_file():
        return [], []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def chosen_row(metrics_csv: Path, column: str, mode: str = "max") -> dict[str, float] | None:
    """The ``metrics.csv`` row (values as floats, empty cells left out) that ``column`` would have chosen:
    its best finite value, ties keeping the earlier epoch as ``EpochRecord`` does. None without such a row.

    This is how a run that picked its checkpoint on test also knows what val would have picked."""
    best: dict[str, float] | None = None
    for raw in read_rows(metrics_csv)[1]:
        row = {k: number for k, v in raw.items() if k and (number := _number(v)) is not None}
        value = row.get(column)
        if value is None or not math.isfinite(value):
            continue
        if best is None or (value > best[column] if mode == "max" else value < best[column]):
            best = row
    return best


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in ("", None) else None
    except ValueError:
        return None


def write_rows(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    files.write_text(path, out.getvalue())


def keep_rows(path: Path, keep) -> list[str]:
    """Rewrite the CSV at ``path`` (atomically) with only the rows for which ``keep(row)`` is true;
    returns its header ([] when there is no file)."""
    header, rows = read_rows(path)
    if header:
        write_rows(path, header, [r for r in rows if keep(r)])
    return header


class EpochRecord(Checkpoint):
    """Per epoch: a ``metrics.csv`` row, ``last.ckpt``, and ``best.ckpt`` when ``monitor`` improved.

    Args:
        run_dir: the run folder; files go to ``metrics.csv`` and ``checkpoints/``.
        monitor: logged metric that picks ``best.ckpt`` (None: nothing is evaluated, the last epoch is the
            result, ``best_epoch`` follows it, and ``best.ckpt`` is its copy, written once when fit
            finishes: a finished run folder always holds one).
        mode: ``"max"`` or ``"min"``. Ties keep the earlier epoch.

    Epochs are counted from 1 in the CSV, the state and ``best_epoch``. A second training phase in the
    same folder (fine-tuning after the head) passes ``epoch_offset`` (the first phase's epochs, whose rows
    it keeps) and ``row_extra`` (columns such as ``{"phase": 2}``) for its rows.
    """

    def __init__(self, run_dir: Path, monitor: str | None, mode: str = "max", *, epoch_offset: int = 0,
                 row_extra: dict[str, Any] | None = None):
        self.run_dir = Path(run_dir)
        self.epoch_offset = epoch_offset
        self.row_extra = dict(row_extra or {})
        self.metrics_path = self.run_dir / "metrics.csv"
        self.dirpath = self.run_dir / "checkpoints"
        self.monitor, self.mode = monitor, mode
        self.best_score: float | None = None
        self.best_epoch = 0
        self.last_epoch = 0
        self.saved_epoch = 0  # the epoch that last.ckpt holds (last_epoch until its write completes)
        self.offset_s = 0.0   # training seconds before a resume
        self.eval_s = 0.0     # of which spent evaluating
        self.started = time.perf_counter()
        self._eval_started: float | None = None
        self.resumed = False

    @property
    def state_key(self) -> str:
        return STATE_KEY

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    def elapsed(self) -> float:
        return self.offset_s + time.perf_counter() - self.started

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_score is None:
            return True
        return value > self.best_score if self.mode == "max" else value < self.best_score

    # ---- Lightning hooks --------------------------------------------------------------------------
    def on_validation_start(self, trainer, pl_module):
        self._eval_started = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        if self._eval_started is not None:
            self.eval_s += time.perf_counter() - self._eval_started
            self._eval_started = None
        if self.monitor:
            self._end_epoch(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        if not self.monitor:  # no evaluation: the epoch ends here (after the module logged its metrics)
            self._end_epoch(trainer)

    def _end_epoch(self, trainer: pl.Trainer) -> None:
        epoch = trainer.current_epoch + 1
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        value = metrics.get(self.monitor) if self.monitor else None
        improved = value is not None and self._better(value)
        if improved:
            self.best_score, self.best_epoch = value, epoch
        elif not self.monitor:
            self.best_epoch = epoch  # nothing chooses: the epoch kept is the last
        self.last_epoch = epoch
        if trainer.is_global_zero:
            lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
            self._write_row({**self.row_extra, "epoch": epoch + self.epoch_offset, **dict(sorted(metrics.items())), "lr": lr,
                             "elapsed_s": round(self.elapsed(), 3), "eval_s": round(self.eval_s, 3)})
        trainer.save_checkpoint(self.last_path, weights_only=False)  # every rank calls it; rank zero writes
        self.saved_epoch = epoch
        if improved and trainer.is_global_zero:
            copy_atomic(self.last_path, self.best_path)

    def on_fit_end(self, trainer, pl_module):
        if not self.monitor and trainer.is_global_zero and self.last_path.is_file():
            copy_atomic(self.last_path, self.best_path)  # once per fit, not per epoch: short epochs stay cheap

    def _write_row(self, row: dict[str, Any]) -> None:
        header, rows = read_rows(self.metrics_path)
        kept = [r for r in rows if int(r["epoch"]) < row["epoch"]]  # a killed attempt's rows are replaced
        header = header + [k for k in row if k not in header]
        write_rows(self.metrics_path, header, kept + [row])

    def on_fit_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            files.remove_leftovers(self.dirpath)  # temporary files of a killed process
            files.remove_leftovers(self.run_dir)
            if self.resumed:
                self._reconcile()

    def _reconcile(self) -> None:
        """After a resume: drop rows of epochs that no checkpoint holds, and finish a best.ckpt copy that
        a kill interrupted."""
        kept_epochs = self.last_epoch + self.epoch_offset
        keep_rows(self.metrics_path, lambda r: int(r["epoch"]) <= kept_epochs)
        if self.monitor and self.best_epoch and self.best_epoch == self.last_epoch:
            best_holds = None
            if self.best_path.is_file():
                try:
                    best_holds = recorded_state(read_checkpoint(self.best_path, mmap=True)).get("best_epoch")
                except CheckpointError:
                    pass
            if best_holds != self.best_epoch:
                copy_atomic(self.last_path, self.best_path)

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_score": self.best_score, "best_epoch": self.best_epoch,
                "last_epoch": self.last_epoch, "elapsed_s": self.elapsed(), "eval_s": self.eval_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_epoch = int(state_dict.get("best_epoch") or 0)
        self.last_epoch = self.saved_epoch = int(state_dict.get("last_epoch") or 0)
        self.offset_s = float(state_dict.get("elapsed_s") or 0.0)
        self.eval_s = float(state_dict.get("eval_s") or 0.0)
        self.started = time.perf_counter()
        self.resumed = True


# ---- Lightning's CSV log, kept whole across resumes --------------------------------------------------


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts. This one keeps the
    rows of the epochs that the resumed checkpoint holds (Lightning's ``epoch`` column counts from 0)."""

    def __init__(self, log_dir: str, keep_epochs: int):
        self.keep_epochs = keep_epochs
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        header = keep_rows(Path(self.metrics_file_path),
                           lambda r: r.get("epoch") not in (None, "") and float(r["epoch"]) < self.keep_epochs)
        self.metrics_keys = list(header)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:  # Lightning's rewrites in place
        write_rows(Path(self.metrics_file_path), fieldnames, read_rows(Path(self.metrics_file_path))[1])


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` keeps every epoch before ``keep_epochs`` across a resume."""

    def __init__(self, save_dir: Path, keep_epochs: int = 0):
        super().__init__(save_dir=save_dir, name="logs", version="")
        self.keep_epochs = keep_epochs

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            files.make_dirs(self.root_dir)
            self._experiment = _KeepingWriter(self.log_dir, self.keep_epochs)
        return self._experiment
