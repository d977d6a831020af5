"""The Lightning Trainer as every exercise uses it.

``fit`` wires one run folder to a Trainer: a ModelCheckpoint that keeps ``best.ckpt`` by the
monitored metric and ``last.ckpt`` for ``--resume``, optional early stopping, a per-epoch
``metrics.csv``, the chosen logger, and precision/devices/strategy passed straight through (so DDP on
several GPUs or nodes is Lightning's, not ours).
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from cnnlab.config import field
from cnnlab.errors import CnnlabError


@dataclass
class EngineConfig:
    """What every training command shares: naming, seeding, length, hardware, logging."""

    name: str = field("", "run name: the folder runs/<exercise>/<name> (default: derived from the config)")
    runs_dir: str = field("", "folder holding the runs (default: ./runs or $CNNLAB_RUNS)")
    seed: int = field(0, "random seed for initialisation, shuffling and augmentation")
    epochs: int = field(10, "training epochs")
    early_stopping_patience: int = field(0, "stop after this many epochs without improvement (0: never)")
    accelerator: str = field("auto", "Lightning accelerator: auto, cpu, gpu, ...")
    devices: str = field("auto", "Lightning devices: auto, a count, or a list such as 0,1")
    num_nodes: int = field(1, "machines for multi-node DDP")
    strategy: str = field("auto", "Lightning strategy: auto, ddp, ddp_spawn, ...")
    precision: str = field("auto", "auto (bf16-mixed on CUDA and on CPUs with native bf16, else 32-true), 32-true, bf16-mixed, 16-mixed")
    logger: Literal["none", "csv", "tensorboard"] = field("csv", "Lightning logger writing into the run folder")
    progress: bool = field(True, "show progress bars")
    resume: bool = field(False, "continue the named run from its checkpoints/last.ckpt")
    force: bool = field(False, "replace an existing run of the same name instead of adding a suffix")


# Lightning's advice that does not apply to in-memory tensor loaders or to our own metrics.csv.
QUIET_WARNINGS = (".*does not have many workers.*", ".*smaller than the logging interval.*",
                  ".*LeafSpec.*", ".*litlogger.*", ".*`training_step` returned `None`.*")


def quiet_lightning() -> None:
    """Keep Lightning's start-up banner (GPU/TPU availability, tips) out of the user's way."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class FitResult:
    best_ckpt: Path
    last_ckpt: Path
    best_epoch: int  # 1-based, as people count epochs
    best_score: float
    epochs: int
    wall_time_s: float
    is_global_zero: bool = True


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions, where bf16 autocast is about 2x faster
    (measured here on an AMD EPYC with avx512_bf16); elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    if precision != "auto":
        return precision
    on_cuda = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_cuda:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def _devices(value: str) -> Any:
    if value == "auto":
        return "auto"
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    try:
        return int(value)
    except ValueError:
        raise CnnlabError(f"--devices: expected auto, a count or a list like 0,1; got {value!r}") from None


class EpochMetricsCSV(pl.Callback):
    """Appends one row per finished epoch to ``metrics.csv`` (rank zero only).

    A row for epoch e is written when epoch e+1 starts, or when training ends: only then has
    Lightning reduced everything the module logged for epoch e, wherever the module logged it.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.written_epoch = -1
        self.started = time.perf_counter()
        self.offset_s = 0.0  # training seconds before a resume, restored from the checkpoint
        self.eval_s = 0.0    # of which spent evaluating (so time-to-accuracy can leave it out)
        self._eval_started: float | None = None

    def elapsed(self) -> float:
        return self.offset_s + time.perf_counter() - self.started

    def _write(self, trainer: pl.Trainer, epoch: int) -> None:
        if not trainer.is_global_zero or epoch <= self.written_epoch or trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        if not metrics:
            return
        row = {"epoch": epoch + 1, **dict(sorted(metrics.items()))}
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        row["elapsed_s"] = round(self.elapsed(), 3)
        row["eval_s"] = round(self.eval_s, 3)
        new_file = not self.path.exists()
        fieldnames = list(row)
        if not new_file:
            with self.path.open() as f:
                header = next(csv.reader(f), [])
            fieldnames = header + [k for k in row if k not in header]
            if fieldnames != header:  # a metric appeared: rewrite with the wider header
                with self.path.open() as f:
                    old = list(csv.DictReader(f))
                with self.path.open("w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=fieldnames)
                    w.writeheader()
                    w.writerows(old)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fieldnames)
            if new_file:
                w.writeheader()
            w.writerow(row)
        self.written_epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch > 0:
            self._write(trainer, trainer.current_epoch - 1)

    def on_train_end(self, trainer, pl_module):
        self._write(trainer, trainer.current_epoch - 1)

    def on_validation_epoch_start(self, trainer, pl_module):
        self._eval_started = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):
        if self._eval_started is not None and not trainer.sanity_checking:
            self.eval_s += time.perf_counter() - self._eval_started
        self._eval_started = None

    def state_dict(self) -> dict[str, Any]:
        return {"written_epoch": self.written_epoch, "elapsed_s": self.elapsed(), "eval_s": self.eval_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.written_epoch = int(state_dict.get("written_epoch", -1))
        self.offset_s = float(state_dict.get("elapsed_s", 0.0))
        self.eval_s = float(state_dict.get("eval_s", 0.0))
        self.started = time.perf_counter()


def check_checkpoint_is_safe(path: Path) -> None:
    """Refuse a checkpoint that needs pickle to load: it could run arbitrary code."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CnnlabError(f"{path}: checkpoint not found") from None
    except Exception as e:  # UnpicklingError and friends
        raise CnnlabError(f"{path}: refusing to load, not a plain weights-only checkpoint ({type(e).__name__})") from None


def load_model_weights(model: torch.nn.Module, ckpt_path: Path, prefix: str = "model.") -> torch.nn.Module:
    """Load the ``model.*`` weights of a Lightning checkpoint (weights_only: data, never code)."""
    check_checkpoint_is_safe(Path(ckpt_path))
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    weights = state.get("state_dict", state)
    weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    model.load_state_dict(weights)
    return model


def _logger(kind: str, run_dir: Path):
    if kind == "csv":
        return pl.loggers.CSVLogger(save_dir=run_dir, name="logs", version="")
    if kind == "tensorboard":
        return pl.loggers.TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="")
    return False


def make_trainer(config: EngineConfig, run_dir: Path, *, monitor: str, mode: str,
                 has_eval: bool = True) -> tuple[pl.Trainer, ModelCheckpoint]:
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor=monitor if has_eval else None,
        mode=mode, save_top_k=1, save_last=True, enable_version_counter=False, auto_insert_metric_name=False,
    )
    callbacks: list[pl.Callback] = [checkpoint, EpochMetricsCSV(run_dir / "metrics.csv")]
    if config.early_stopping_patience > 0 and has_eval:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=config.early_stopping_patience))
    trainer = pl.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=_devices(config.devices),
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=resolve_precision(config.precision, config.accelerator),
        callbacks=callbacks,
        logger=_logger(config.logger, run_dir),
        enable_progress_bar=config.progress,
        enable_model_summary=False,  # we write our own model_summary.txt
        num_sanity_val_steps=0,
        log_every_n_steps=50,
        use_distributed_sampler=False,  # TensorLoader shards by rank itself
        default_root_dir=run_dir,
        deterministic=False,
    )
    return trainer, checkpoint


def fit(module: pl.LightningModule, train_loader, eval_loader, run_dir: Path, config: EngineConfig, *,
        monitor: str, mode: Literal["max", "min"]) -> FitResult:
    """Train ``module``; returns where the best and last checkpoints are and when the best was."""
    run_dir = Path(run_dir)
    quiet_lightning()
    trainer, checkpoint = make_trainer(config, run_dir, monitor=monitor, mode=mode, has_eval=eval_loader is not None)
    for loader in (train_loader, eval_loader):
        if hasattr(loader, "shard"):
            loader.shard(trainer.global_rank, trainer.world_size)
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path = None
    if config.resume and last.is_file():
        check_checkpoint_is_safe(last)
        ckpt_path = last
    with warnings.catch_warnings():
        for noise in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", noise)
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=eval_loader, ckpt_path=ckpt_path)
    wall = next(cb for cb in trainer.callbacks if isinstance(cb, EpochMetricsCSV)).elapsed()
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    best_epoch = _best_epoch(run_dir / "metrics.csv", monitor, mode)
    score = checkpoint.best_model_score
    return FitResult(best_ckpt=best, last_ckpt=last, best_epoch=best_epoch,
                     best_score=float(score) if score is not None else float("nan"),
                     epochs=trainer.current_epoch, wall_time_s=wall, is_global_zero=trainer.is_global_zero)


def _best_epoch(metrics_csv: Path, monitor: str, mode: str) -> int:
    try:
        with metrics_csv.open() as f:
            rows = [r for r in csv.DictReader(f) if r.get(monitor)]
    except OSError:
        return 0
    if not rows:
        return 0
    pick = max if mode == "max" else min
    # The first epoch reaching the best value, as ModelCheckpoint keeps the first on ties.
    best = pick(float(r[monitor]) for r in rows)
    return next(int(r["epoch"]) for r in rows if float(r[monitor]) == best)


def child_of_launcher() -> bool:
    """True inside a process that Lightning's DDP launcher started (it re-runs our command)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
