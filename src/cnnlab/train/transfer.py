"""Transfer-learning strategies for a ``TransferNet`` (backbone + head), all trained by ``engine.fit``.

* ``frozen``: the backbone in eval mode without gradients (``freeze``). By default its pooled features
  are computed once and cached (``train.features``) and the head trains from them in seconds, its
  checkpoints holding the head alone (``HeadOnFeatures``); with ``cache=False`` every batch goes through
  the backbone, with augmentation.
* ``finetune``: the keras.io recipe in two phases. Phase 1 is ``frozen`` for ``head_epochs`` (into
  ``<run>/phase1/``); phase 2 unfreezes the last K blocks (``unfreeze_last``) and trains on augmented
  images at ``finetune_lr``, BatchNorms of the still-frozen blocks kept in inference mode (and, unless
  ``finetune_bn_stats``, those of the unfrozen blocks too, as keras.io does).
* ``scratch``: the same network from random weights, every parameter trained: the baseline that shows
  what the ImageNet weights buy.

Each strategy returns an ``Outcome``: what was trained, where its best checkpoint is, and how to feed it.
"""

from __future__ import annotations

import dataclasses
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnnlab import config as cfgmod
from cnnlab.train.features import cached_features
from cnnlab.data.food101 import FoodData
from cnnlab.data.loader import TensorLoader
from cnnlab.data.preprocess import Preprocess
from cnnlab.errors import ConfigError
from cnnlab.models.transfer import HeadOnFeatures, TransferNet
from cnnlab.registry import Registry
from cnnlab.train.classifier import ClassifierModule
from cnnlab.train.checkpoint import read_rows, write_rows
from cnnlab.train.engine import EngineConfig, FitResult, fit, load_model_weights, resolve_precision
from cnnlab.train.freeze import count_trainable, freeze, unfreeze, unfreeze_last

STRATEGIES = Registry("strategy")


# ---- what the net is fed: images (with the backbone's transforms) or cached features ---------------


@dataclass
class Inputs:
    """Per split, the tensors a loader serves, and the batch transforms for training and evaluation."""

    tensors: dict[str, tuple[Any, Any]]  # split -> (x, y)
    train_transform: Callable | None = None
    eval_transform: Callable | None = None
    kind: str = "images"  # or "features"
    info: dict[str, Any] = field(default_factory=dict)

    def loader(self, split: str, batch_size: int, *, train: bool = False, seed: int = 0) -> TensorLoader:
        x, y = self.tensors[split]
        if train:
            return TensorLoader(x, y, batch_size, shuffle=True, drop_last=len(x) > batch_size,
                                transform=self.train_transform, seed=seed)
        return TensorLoader(x, y, batch_size, transform=self.eval_transform)


def run_device(cfg: Any) -> torch.device:
    """Where extraction and final evaluation run: the GPU unless the config asks for the CPU."""
    on_gpu = cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if on_gpu else "cpu")


def image_inputs(data: FoodData, pre: Preprocess) -> Inputs:
    tensors = {"train": (data.train.x, data.train.y), "test": (data.test.x, data.test.y)}
    if data.val is not None:
        tensors["val"] = (data.val.x, data.val.y)
    return Inputs(tensors, pre.train_transform(), pre.eval_transform(), "images")


def feature_inputs(net: TransferNet, data: FoodData, pre: Preprocess, cfg: Any) -> Inputs:
    """Cached pooled features of every split (extracted now if absent); eval preprocessing, no augmentation."""
    bf16 = resolve_precision(cfg.precision, cfg.accelerator).startswith("bf16")
    device = run_device(cfg)
    tensors, info = {}, {"built": False, "seconds": 0.0, "images_per_s": None}
    splits = {"train": data.train, "test": data.test, **({"val": data.val} if data.val is not None else {})}
    # With a val split, train and val are parts of the official train split drawn by the seed.
    drawn_by = (cfg.val_fraction, cfg.seed) if data.val is not None else None
    for split, part in splits.items():
        key = (split, tuple(data.classes), cfg.per_class_limit, drawn_by)
        features, built = cached_features(net, part.x, pre, source=data.root, split=split, key=key,
                                          bf16=bf16, batch_size=cfg.eval_batch_size, kind="food-features",
                                          device=device)
        tensors[split] = (features, part.y)
        if built["built"]:
            info.update(built=True, seconds=info["seconds"] + built["seconds"])
    if info["built"]:
        info["images_per_s"] = sum(len(p) for p in splits.values()) / max(info["seconds"], 1e-9)
    return Inputs(tensors, kind="features", info=info)


@contextmanager
def one_cpu_thread(enabled: bool = True):
    """Train heads on cached features with one CPU thread. Their matmuls are too small to gain from
    more, and on a shared machine OpenMP's spinning threads collapse: a 20-epoch mlp:512 head took
    90 s with 2 threads and 9 s with 1 on this 2-core box while another process was busy."""
    before = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- one phase of training ------------------------------------------------------------------------


@dataclass
class Outcome:
    best_ckpt: Path
    last_ckpt: Path
    epochs: int
    best_epoch: int
    best_score: float
    wall_time_s: float
    model: nn.Module  # what was trained and checkpointed: the TransferNet, or HeadOnFeatures of it
    inputs: Inputs  # how to feed ``model``, for evaluating its best checkpoint
    trainable_params: int
    is_global_zero: bool = True
    phases: list[dict[str, Any]] = field(default_factory=list)
    feature_info: dict[str, Any] | None = None  # extraction of cached features, when a phase used them


def eval_split(cfg: Any) -> str:
    return "val" if cfg.val_fraction > 0 else "test"


def engine_config(cfg: Any) -> EngineConfig:
    """The engine's settings out of an experiment config whose ``strategy`` names the transfer strategy;
    Lightning's strategy comes from ``lightning_strategy`` instead."""
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(EngineConfig)}
    return EngineConfig(**{**shared, "strategy": getattr(cfg, "lightning_strategy", "auto")})


def fit_phase(model: nn.Module, inputs: Inputs, cfg: Any, run_dir: Path, **record_kw: Any) -> FitResult:
    split = eval_split(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    module = ClassifierModule(model, cfg, eval_split=split, hparams=cfgmod.to_dict(cfg))
    train_loader = inputs.loader("train", cfg.batch_size, train=True, seed=cfg.seed)
    eval_loader = inputs.loader(split, cfg.eval_batch_size)
    with warnings.catch_warnings():
        # Frozen BatchNorms stay in eval mode on purpose (see train.freeze); Lightning warns about them.
        warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")
        return fit(module, train_loader, eval_loader, run_dir, engine_config(cfg), monitor=f"{split}_acc", mode="max",
                   **record_kw)


def _outcome(result: FitResult, model: nn.Module, inputs: Inputs, phase: str) -> Outcome:
    phase_info = {"phase": phase, "epochs": result.epochs, "best_epoch": result.best_epoch,
                  "wall_time_s": result.wall_time_s, "trainable_params": count_trainable(model),
                  "precision": result.precision, "precision_reason": result.precision_reason}
    return Outcome(result.best_ckpt, result.last_ckpt, result.epochs, result.best_epoch, result.best_score,
                   result.wall_time_s, model, inputs, count_trainable(model), result.is_global_zero, [phase_info])


# ---- the strategies ---------------------------------------------------------------------------------


@STRATEGIES.register("frozen")
def train_frozen(net: TransferNet, data: FoodData, pre: Preprocess, cfg: Any, run_dir: Path) -> Outcome:
    freeze(net.backbone)
    if not cfg.cache:
        inputs = image_inputs(data, pre)
        return _outcome(fit_phase(net, inputs, cfg, run_dir), net, inputs, "frozen")
    inputs = feature_inputs(net, data, pre, cfg)
    head = HeadOnFeatures(net)
    if cfg.precision == "auto":  # tiny matmuls on cached features: bf16 would cost accuracy and buy no speed
        cfg = cfgmod.replace(cfg, {"precision": "32-true"})
    with one_cpu_thread(run_device(cfg).type == "cpu"):
        result = fit_phase(head, inputs, cfg, run_dir)
    outcome = _outcome(result, head, inputs, "frozen (cached features)")
    outcome.feature_info = inputs.info
    return outcome


@STRATEGIES.register("finetune")
def train_finetune(net: TransferNet, data: FoodData, pre: Preprocess, cfg: Any, run_dir: Path) -> Outcome:
    if cfg.unfreeze != "all" and int(cfg.unfreeze) < 1:
        raise ConfigError("finetune: --unfreeze must be at least 1 (or all); 0 is the frozen strategy")
    head = train_frozen(net, data, pre, cfgmod.replace(cfg, {"epochs": cfg.head_epochs}), run_dir / "phase1")
    load_model_weights(head.model, head.last_ckpt)  # the head as phase 1 left it, as in the keras recipe
    unfreeze(net.head)
    unfreeze_last(net.backbone, cfg.unfreeze, train_bn=cfg.finetune_bn_stats)
    inputs = image_inputs(data, pre)
    if head.is_global_zero:
        merge_phase_metrics(run_dir / "phase1" / "metrics.csv", run_dir / "metrics.csv")
    phase2 = fit_phase(net, inputs, cfgmod.replace(cfg, {"lr": cfg.finetune_lr}), run_dir,
                       epoch_offset=head.epochs, row_extra={"phase": 2})
    body = _outcome(phase2, net, inputs, f"finetune (last {cfg.unfreeze} blocks)")
    body.phases = head.phases + body.phases
    body.feature_info = head.feature_info
    body.epochs += head.epochs
    body.best_epoch += head.epochs  # counted over both phases
    body.wall_time_s += head.wall_time_s
    return body


@STRATEGIES.register("scratch")
def train_scratch(net: TransferNet, data: FoodData, pre: Preprocess, cfg: Any, run_dir: Path) -> Outcome:
    unfreeze(net)
    inputs = image_inputs(data, pre)
    return _outcome(fit_phase(net, inputs, cfg, run_dir), net, inputs, "scratch")


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
