"""What every transfer-learning strategy is built from (the strategies themselves, which read the Food
config, are in ``cnnlab.experiments.food``):

* ``Inputs``: what a ``TransferNet`` (or the head alone) is fed per split: images with the backbone's
  transforms (``image_inputs``), or pooled features of the frozen backbone, computed once and cached
  (``feature_inputs``, see ``train.features``);
* ``fit_phase``: one phase of training through ``engine.fit``, returning an ``Outcome`` (what was
  trained, where its best checkpoint is, and how to feed it);
* ``merge_phase_metrics``: a two-phase run's ``metrics.csv`` as one table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnnlab.data.loader import TensorLoader
from cnnlab.data.preprocess import Preprocess
from cnnlab.data.splits import Dataset, Split
from cnnlab.models.transfer import TransferNet
from cnnlab.train.checkpoint import read_rows, write_rows
from cnnlab.train.classifier import ClassifierModule
from cnnlab.train.engine import FitResult, Length, fit, resolve_precision, uses_cuda
from cnnlab.train.features import cached_features
from cnnlab.train.freeze import count_trainable
from cnnlab.train.options import ClassifierOptim, Hardware, RunOptions


# ---- what the net is fed: images (with the backbone's transforms) or cached features ---------------


@dataclass
class Inputs:
    """Per split, what a loader serves (images, or cached features (N, F), with their labels), and the
    batch transforms for training and evaluation."""

    splits: dict[str, Split]
    train_transform: Callable | None = None
    eval_transform: Callable | None = None
    kind: str = "images"  # or "features"
    info: dict[str, Any] = field(default_factory=dict)

    def loader(self, split: str, batch_size: int, *, train: bool = False, seed: int = 0) -> TensorLoader:
        """Batches of ``split``, read from its images' rows as they are needed (never copied out whole)."""
        part = self.splits[split]
        x, rows = part.rows()
        if train:
            return TensorLoader(x, part.y, batch_size, shuffle=True, drop_last=len(part) > batch_size,
                                transform=self.train_transform, seed=seed, rows=rows)
        return TensorLoader(x, part.y, batch_size, transform=self.eval_transform, rows=rows)


def run_device(hardware: Hardware) -> torch.device:
    """Where extraction and final evaluation run: the GPU unless ``hardware`` asks for the CPU."""
    return torch.device("cuda" if uses_cuda(hardware.accelerator) else "cpu")


def image_inputs(data: Dataset, pre: Preprocess) -> Inputs:
    """Each split's uint8 images, with the backbone's train (augmenting) and eval transforms."""
    splits = {"train": data.train, "test": data.test, **({"val": data.val} if data.val is not None else {})}
    return Inputs(splits, pre.train_transform(), pre.eval_transform(), "images")


def feature_inputs(net: TransferNet, data: Dataset, pre: Preprocess, hardware: Hardware, *,
                   batch_size: int = 128, selection: tuple = (), train_selection: tuple = ()) -> Inputs:
    """Cached pooled features (N, F) float32 of every split (extracted now if absent, in batches of
    ``batch_size`` images); eval preprocessing, no augmentation. ``selection`` names how the splits were
    drawn from the source beyond their classes (per-class limit, val fraction and seed), and
    ``train_selection`` how the training split alone was drawn (a training subset), so that features of
    another draw are never served and val and test features serve every training size."""
    bf16 = resolve_precision(hardware.precision, hardware.accelerator).startswith("bf16")
    device = run_device(hardware)
    features_of, info = {}, {"built": False, "seconds": 0.0, "images_per_s": None}
    splits = {"train": data.train, "test": data.test, **({"val": data.val} if data.val is not None else {})}
    for split, part in splits.items():
        key = (split, tuple(data.classes), *selection, *(train_selection if split == "train" else ()))
        features, built = cached_features(net, part, pre, source=data.source, split=split, key=key,
                                          bf16=bf16, batch_size=batch_size, kind="food-features",
                                          device=device)
        features_of[split] = Split(features, part.y)
        info.update(built=info["built"] or built["built"], seconds=info["seconds"] + built["seconds"])
    if info["seconds"]:
        info["images_per_s"] = sum(len(p) for p in splits.values()) / max(info["seconds"], 1e-9)
    return Inputs(features_of, kind="features", info=info)


# ---- one phase of training ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a strategy trained: its checkpoints and epochs (1-based), the model (the ``TransferNet``, or
    ``HeadOnFeatures`` of it), how to feed that model, and one record per phase."""

    best_ckpt: Path
    last_ckpt: Path
    epochs: int
    best_epoch: int
    best_score: float
    wall_time_s: float
    model: nn.Module
    inputs: Inputs
    trainable_params: int
    is_global_zero: bool = True
    phases: list[dict[str, Any]] = field(default_factory=list)
    feature_info: dict[str, Any] | None = None  # extraction of cached features, when a phase used them


@dataclass
class Phase:
    """How one phase trains: its optimisation, the run and hardware, the split that picks best.ckpt,
    evaluation batch size, and the hyperparameters stored in its checkpoints."""

    optim: ClassifierOptim
    run: RunOptions
    hardware: Hardware
    eval_split: str = "test"
    eval_batch_size: int = 128
    hparams: dict[str, Any] = field(default_factory=dict)


def fit_phase(model: nn.Module, inputs: Inputs, phase: Phase, run_dir: Path, name: str,
              **record_kw: Any) -> Outcome:
    """Train ``model`` on ``inputs`` for one phase (``name`` is recorded); see ``engine.fit`` for errors."""
    run_dir.mkdir(parents=True, exist_ok=True)
    module = ClassifierModule(model, phase.optim, channels_last=phase.hardware.channels_last,
                              eval_split=phase.eval_split, hparams=phase.hparams)
    train_loader = inputs.loader("train", phase.optim.batch_size, train=True, seed=phase.run.seed)
    eval_loader = inputs.loader(phase.eval_split, phase.eval_batch_size)
    with warnings.catch_warnings():
        # Frozen BatchNorms stay in eval mode on purpose (see train.freeze); Lightning warns about them.
        warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
        result = fit(module, train_loader, eval_loader, run_dir, phase.run, phase.hardware,
                     Length(phase.optim.epochs, phase.optim.early_stopping_patience),
                     monitor=f"{phase.eval_split}_acc", mode="max", **record_kw)
    return _outcome(result, model, inputs, name)


def _outcome(result: FitResult, model: nn.Module, inputs: Inputs, phase: str) -> Outcome:
    phase_info = {"phase": phase, "epochs": result.epochs, "best_epoch": result.best_epoch,
                  "wall_time_s": result.wall_time_s, "trainable_params": count_trainable(model),
                  "precision": result.precision, "precision_reason": result.precision_reason}
    return Outcome(result.best_ckpt, result.last_ckpt, result.epochs, result.best_epoch, result.best_score,
                   result.wall_time_s, model, inputs, count_trainable(model), result.is_global_zero, [phase_info])


def merge_phase_metrics(phase1_csv: Path, run_csv: Path) -> None:
    """Start the run's metrics.csv with phase 1's rows (a ``phase`` column of 1); phase 2 appends its
    own rows, epochs counted on from phase 1 (see ``EpochRecord``). A resumed run keeps what it has."""
    header, rows = read_rows(run_csv)
    if any(r.get("phase") == "1" for r in rows):
        return
    _, phase1 = read_rows(phase1_csv)
    merged = [{"phase": 1, **r} for r in phase1]
    columns = list(dict.fromkeys(["phase", *(k for r in merged for k in r), *header]))
    write_rows(run_csv, columns, merged + rows)
