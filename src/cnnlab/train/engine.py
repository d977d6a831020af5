"""The Lightning Trainer as every exercise uses it.

``fit`` wires one run folder to a Trainer: ``EpochRecord`` keeps ``metrics.csv``, ``best.ckpt`` by the
monitored metric (or the last epoch's copy when nothing is monitored) and ``last.ckpt`` for ``--resume``
(crash-safe, see ``train.checkpoint``); a NaN loss stops the run (``FiniteLoss``); optional early stopping; the chosen logger; and precision/devices/strategy
passed straight through (so DDP on several GPUs or nodes is Lightning's, not ours).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, TQDMProgressBar

from cnnlab.errors import CnnlabError, ConfigError, TrainingDiverged, TrainingInterrupted
from cnnlab.train.options import Hardware, RunOptions
from cnnlab.train.checkpoint import (AtomicCheckpointIO, EpochRecord, ResumableCSVLogger,
                                     read_checkpoint, recorded_state)


# Lightning's advice that does not apply to in-memory tensor loaders or to our own metrics.csv.
QUIET_WARNINGS = (".*does not have many workers.*", ".*smaller than the logging interval.*",
                  ".*LeafSpec.*", ".*litlogger.*", ".*`training_step` returned `None`.*",
                  ".*`validation_step` but have no `val_dataloader`.*")  # runs that score nothing while training


def plain_cuda_check_without_nvml() -> None:
    """Undo Lightning's ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on a Linux CUDA build of torch where the NVIDIA
    management library (NVML) cannot be loaded.

    Lightning sets it on import so that asking whether CUDA is there never initialises CUDA before a
    fork. torch then answers ``torch.cuda.is_available()`` by trying to load NVML, and where it cannot,
    it tries again at every call, and ``Adam.step`` asks once a step; when the load fails, torch falls
    back to the plain CUDA query anyway, so skipping the attempt changes nothing but its cost. Not on
    ROCm builds, whose NVML-based check asks amdsmi instead and is what keeps their forks safe. Called
    once, on import of this module."""
    if (os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not sys.platform.startswith("linux")
            or torch.version.hip is not None):
        return
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:  # no NVML here
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


plain_cuda_check_without_nvml()


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit systems.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX = -1, -3, 32 * 2**20


@functools.cache
def reuse_freed_memory() -> bool:
    """Make glibc keep the memory of freed tensors up to 32 MiB for the next step, instead of handing it
    back to the OS as soon as it is freed. Applied once per process, by the first ``make_trainer`` (every
    training run); the benches apply it at their start, so that their plain loops run under the same
    policy. Returns False where it could not be set (no glibc, or a 32-bit one).

    Why: by default glibc serves blocks above a threshold that it adjusts as it goes with a fresh ``mmap``,
    and trims the top of its heap once more than twice that is free there, so a training step's freed
    activations (a batch's: 16 MiB for 128 images of 32x32x32 floats) keep going back to the OS and each
    step page-faults them in again, each page zeroed by the kernel (bench/keras_peer.py's fp32 run shows
    the cost; tests/test_memory.py counts the faults). TensorFlow's own allocator keeps its memory; so
    does cnnlab now. Between runs ``release_memory`` still hands memory back explicitly."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    # A fixed mmap threshold also stops glibc's own adjustment of both thresholds; the trim threshold
    # then keeps up to 1 GiB of free memory at the top of the heap between steps.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2**30))


def quiet_lightning() -> None:
    """Keep Lightning's start-up banner (GPU/TPU availability, tips) out of the user's way."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class FitResult:
    best_ckpt: Path
    last_ckpt: Path
    best_epoch: int  # 1-based, as people count epochs; the last one when nothing is monitored
    best_score: float
    epochs: int
    wall_time_s: float
    precision: str = "32-true"  # what the Trainer used
    precision_reason: str = ""  # why (``auto`` resolved for this machine, or as set)
    is_global_zero: bool = True
    monitor: str = ""  # the logged metric that picked best_ckpt


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions, where bf16 autocast is faster than fp32
    (bench/cifar_speed.py prints the precision it measures); elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """The Lightning precision that ``precision`` (``auto`` or a Lightning value) means on this machine."""
    return precision_choice(precision, accelerator)[0]


def uses_cuda(accelerator: str = "auto") -> bool:
    """True when a run with this ``accelerator`` setting runs on a CUDA GPU."""
    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def precision_choice(precision: str, accelerator: str = "auto") -> tuple[str, str]:
    """The Lightning precision that ``precision`` means here, and why (printed once per run)."""
    if precision != "auto":
        return precision, "as set"
    if uses_cuda(accelerator):
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "auto: this GPU supports bf16"
        return "16-mixed", "auto: this GPU lacks bf16"
    if cpu_has_native_bf16():
        return "bf16-mixed", "auto: this CPU has native bf16 instructions (avx512_bf16/amx_bf16)"
    return "32-true", "auto: this CPU has no native bf16 instructions, where bf16 would be emulated and slower"


def _devices(value: str) -> Any:
    if value == "auto":
        return "auto"
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    try:
        return int(value)
    except ValueError:
        raise CnnlabError(f"hardware.devices: expected auto, a count or a list like 0,1; got {value!r}") from None


def _logger(kind: str, run_dir: Path, keep_epochs: int = 0):
    if kind == "csv":
        return ResumableCSVLogger(run_dir, keep_epochs)
    if kind == "tensorboard":
        return pl.loggers.TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="")
    return False


@contextlib.contextmanager
def _stdout_is_stderr():
    """Lightning's bars write to ``sys.stdout`` as it is when each bar is made: point it at stderr."""
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout = stdout


def _on_stderr(make_bar):
    """A bar factory of TQDMProgressBar, made while ``sys.stdout`` points at stderr."""
    @functools.wraps(make_bar)
    def make(self):
        with _stdout_is_stderr():
            return make_bar(self)
    return make


class ProgressBar(TQDMProgressBar):
    """Lightning's bars on stderr (stdout keeps only results), epochs counted from 1 as in
    ``metrics.csv``, and the evaluated split named ("evaluating test", not "Validation")."""

    def __init__(self, eval_split: str = "test"):
        super().__init__()
        self.eval_split = eval_split

    @property
    def validation_description(self) -> str:
        return f"Evaluating {self.eval_split}"

    init_train_tqdm = _on_stderr(TQDMProgressBar.init_train_tqdm)
    init_validation_tqdm = _on_stderr(TQDMProgressBar.init_validation_tqdm)
    init_sanity_tqdm = _on_stderr(TQDMProgressBar.init_sanity_tqdm)
    init_predict_tqdm = _on_stderr(TQDMProgressBar.init_predict_tqdm)
    init_test_tqdm = _on_stderr(TQDMProgressBar.init_test_tqdm)

    def on_train_epoch_start(self, trainer, *args):
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


def show_progress(run: RunOptions) -> bool:
    """Bars only where someone watches: asked for, and stderr is a terminal (no frames in a log file)."""
    return run.progress and sys.stderr.isatty()


def _loss_text(loss: torch.Tensor | None) -> str:
    value = float(loss) if loss is not None else float("nan")
    return f"{value:g}" if not math.isfinite(value) else "NaN or infinite on another DDP rank"


class FiniteLoss(pl.Callback):
    """Stops training at the first NaN or infinite training loss with ``TrainingDiverged``: carrying on
    would only write NaN weights and a result that means nothing. The weights and buffers (BatchNorm's
    running statistics) are also checked once an epoch, before it is evaluated and recorded: the last
    step of an epoch can overflow them while its loss, computed before that step, was still finite (seen
    on an AMD CPU), and no checkpoint may hold them."""

    checked_step = -1  # the global step whose weights were last checked: an evaluated epoch's end is not checked again

    def _check_weights(self, trainer, pl_module) -> None:
        if trainer.global_step == self.checked_step:
            return
        self.checked_step = trainer.global_step
        tensors = [t for t in pl_module.state_dict().values() if t.is_floating_point()]
        # One reduction, one host sync (a sync per tensor would stall a GPU once per parameter).
        finite = not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
        if trainer.world_size > 1:
            finite = not trainer.strategy.reduce_boolean_decision(not finite, all=False)
        if not finite:
            self._diverged(trainer, "the weights or running statistics became NaN or infinite")

    def on_validation_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._check_weights(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):  # runs without evaluation: before EpochRecord's
        self._check_weights(trainer, pl_module)

    def _diverged(self, trainer, what: str) -> None:
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        epoch, step = trainer.current_epoch + 1, trainer.global_step
        raise TrainingDiverged(
            f"training diverged: {what} at epoch {epoch}, step {step} (lr {lr:g}); "
            f"try a lower learning rate (--lr) or 32-true precision; the run is recorded as diverged",
            info={"diverged_epoch": epoch, "diverged_step": step, "diverged_lr": lr})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        finite = loss is None or bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:  # every rank stops together, or the others hang in the next all-reduce
            finite = not trainer.strategy.reduce_boolean_decision(not finite, all=False)
        if not finite:
            self._diverged(trainer, f"the loss became {_loss_text(loss)}")


@dataclass
class Length:
    """How long a fit runs: ``epochs`` at most, fewer with early stopping after ``patience`` epochs
    without improvement of the monitored metric (0: never)."""

    epochs: int
    patience: int = 0


def check_hardware(hardware: Hardware) -> None:
    """Fail before any run folder exists when Lightning would refuse ``hardware`` (an unknown precision,
    accelerator or strategy, a GPU asked for on a machine without one, ...).

    Raises:
        ConfigError: naming the setting, with Lightning's reason.
    """
    quiet_lightning()
    try:
        pl.Trainer(accelerator=hardware.accelerator, devices=_devices(hardware.devices), num_nodes=hardware.num_nodes,
                   strategy=hardware.strategy, precision=resolve_precision(hardware.precision, hardware.accelerator),
                   logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    except CnnlabError:
        raise
    except Exception as e:  # ValueError, MisconfigurationException, ...: all mean "not a setting Lightning takes"
        reason = " ".join(str(e).split())
        raise ConfigError(f"hardware: Lightning refuses accelerator={hardware.accelerator!r}, devices="
                          f"{hardware.devices!r}, num_nodes={hardware.num_nodes}, strategy={hardware.strategy!r}, "
                          f"precision={hardware.precision!r}: {reason}") from None


def make_trainer(run: RunOptions, hardware: Hardware, length: Length, run_dir: Path, *, monitor: str, mode: str,
                 has_eval: bool = True, keep_log_epochs: int = 0, **record_kw: Any) -> tuple[pl.Trainer, EpochRecord]:
    """A Trainer wired to ``run_dir`` (see ``fit``); returns it and its ``EpochRecord``."""
    reuse_freed_memory()
    record = EpochRecord(run_dir, monitor if has_eval else None, mode, **record_kw)
    callbacks: list[pl.Callback] = [FiniteLoss(), record]
    if show_progress(run):
        callbacks.append(ProgressBar(monitor.split("_")[0] if has_eval else "train"))
    if length.patience > 0 and has_eval:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=length.patience))
    trainer = pl.Trainer(
        max_epochs=length.epochs,
        accelerator=hardware.accelerator,
        devices=_devices(hardware.devices),
        num_nodes=hardware.num_nodes,
        strategy=hardware.strategy,
        precision=resolve_precision(hardware.precision, hardware.accelerator),
        callbacks=callbacks,
        logger=_logger(run.logger, run_dir, keep_log_epochs),
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=True,  # EpochRecord is the checkpoint callback (no default ModelCheckpoint added)
        enable_progress_bar=show_progress(run),
        enable_model_summary=False,  # we write our own model_summary.txt
        num_sanity_val_steps=0,
        log_every_n_steps=50,
        use_distributed_sampler=False,  # TensorLoader shards by rank itself
        default_root_dir=run_dir,
        deterministic=False,
    )
    return trainer, record


def fit(module: pl.LightningModule, train_loader, eval_loader, run_dir: Path, run: RunOptions, hardware: Hardware,
        length: Length, *, monitor: str, mode: Literal["max", "min"], **record_kw: Any) -> FitResult:
    """Train ``module`` for ``length``; returns where the best and last checkpoints are and when the best was.

    ``eval_loader`` may be a list (one per evaluated split, see ``ClassifierModule``); None trains without
    evaluation. With ``run.resume`` the run continues from ``checkpoints/last.ckpt`` (checked first).
    ``record_kw`` (``epoch_offset``, ``row_extra``) go to ``EpochRecord``.

    Raises:
        CheckpointError: ``--resume`` without a readable ``last.ckpt``.
        TrainingDiverged: a NaN or infinite loss (exit code 3); ``info`` says when.
        TrainingInterrupted: Ctrl-C (exit code 130); ``last.ckpt`` holds the last finished epoch.
    """
    run_dir = Path(run_dir)
    quiet_lightning()
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path, done_epochs = None, 0
    if run.resume and last.is_file():  # a run killed in its first epoch starts again from scratch
        done_epochs = recorded_state(read_checkpoint(last, mmap=True)).get("last_epoch", 0)
        ckpt_path = last
    has_eval = eval_loader is not None
    trainer, record = make_trainer(run, hardware, length, run_dir, monitor=monitor, mode=mode, has_eval=has_eval,
                                   keep_log_epochs=done_epochs, **record_kw)
    reason = precision_choice(hardware.precision, hardware.accelerator)[1]
    if trainer.is_global_zero:
        print(f"cnnlab: precision {trainer.precision} ({reason})", file=sys.stderr)
    eval_loaders = eval_loader if isinstance(eval_loader, (list, tuple)) else [eval_loader]
    for loader in (train_loader, *eval_loaders):
        if hasattr(loader, "shard"):
            loader.shard(trainer.global_rank, trainer.world_size)
    try:
        with warnings.catch_warnings():
            for noise in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", noise)
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=eval_loader, ckpt_path=ckpt_path,
                        weights_only=True)  # data only: a checkpoint never runs code
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into sys.exit(1) after its own clean-up
            signal.signal(signal.SIGINT, signal.default_int_handler)  # which left Ctrl-C ignored
            where = f"interrupted during epoch {trainer.current_epoch + 1}"
            held = epoch_held(last)
            if not held:
                raise TrainingInterrupted(f"{where}, before any epoch finished: nothing to resume; "
                                          f"run the command again (with --force to reuse the name)") from None
            raise TrainingInterrupted(
                f"{where}; {last} holds epoch {held} (loadable); continue with the same command "
                f"plus --resume --name {run_dir.name}") from None
        raise
    except TrainingDiverged as e:
        e.info.update(epochs=record.last_epoch, best_epoch=record.best_epoch, wall_time_s=record.elapsed(),
                      precision=trainer.precision)
        raise
    if not record.last_epoch and last.is_file():  # ddp_spawn trained in workers: read what they recorded
        record.load_state_dict(recorded_state(read_checkpoint(last, mmap=True)))
    return FitResult(best_ckpt=record.best_path, last_ckpt=last, best_epoch=record.best_epoch,
                     best_score=record.best_score if record.best_score is not None else float("nan"),
                     epochs=record.last_epoch, wall_time_s=record.elapsed(), precision=str(trainer.precision),
                     precision_reason=reason, is_global_zero=trainer.is_global_zero,
                     monitor=monitor if has_eval else "")


def epoch_held(last: Path) -> int:
    """The epoch that ``last.ckpt`` holds, read from the file itself (0: none, or unreadable). A Ctrl-C
    can land after the file's rename and before the callback notes it, so the file is what to believe."""
    if not last.is_file():
        return 0
    try:
        return int(recorded_state(read_checkpoint(last, mmap=True)).get("last_epoch") or 0)
    except CnnlabError:  # CheckpointError: a damaged file holds nothing to resume from
        return 0


@contextlib.contextmanager
def cpu_threads(threads: int):
    """Run the block with ``threads`` torch CPU threads (0: leave the setting alone), then restore it.

    Why: OpenMP threads wait for each other at every operation; when another process holds one of the
    cores, a two-thread step of the small models here is many times slower than a one-thread step
    (bench/notmnist.py runs both).
    """
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def release_memory() -> None:
    """Hand back to the OS the memory that freed tensors left in the C allocator's arenas (glibc's
    ``malloc_trim``; a no-op where there is none). Tensors under its mmap threshold come from arenas that
    glibc keeps after they are freed: after one training run, most of its batches and activations. Called
    between the runs of a comparison and the steps of the lab, whose peak memory would otherwise carry
    what earlier runs left (tests/test_memory.py shows the effect)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to trim this way
        pass


def child_of_launcher() -> bool:
    """True inside a process that Lightning's DDP launcher started (it re-runs our command)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
