"""The Lightning module every classifier trains with (CIFAR-10 nets, Food-101 heads and fine-tunes).

Accuracy is counted, not averaged: correct predictions and examples are summed over the epoch (and
over DDP ranks), so the logged accuracy is exact whatever the batch sizes.
"""

from __future__ import annotations

import math

from dataclasses import asdict, dataclass
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.config import field
from cnnlab.train.engine import EngineConfig
from cnnlab.train.lookahead import Lookahead
from cnnlab.train.sums import EpochSums


@dataclass
class ClassifierTrainConfig(EngineConfig):
    """Engine settings plus the optimiser of a classifier."""

    batch_size: int = field(64, "images per batch (per device)")
    # AdamW by default: it learns within the first hundred steps at one learning rate for every
    # architecture and precision, where SGD needs a per-net lr and many epochs (the quick runs people try
    # first). The SGD recipes (Table 1's, airbench's) set their optimizer explicitly.
    optimizer: Literal["sgd", "adamw"] = field("adamw", "adamw or sgd (momentum, Nesterov)")
    lr: float = field(1e-3, "peak learning rate")
    momentum: float = field(0.9, "SGD momentum")
    weight_decay: float = field(0.05, "weight decay on conv/linear weights (not on biases or norms); decoupled for adamw")
    schedule: Literal["onecycle", "cosine", "constant"] = field("onecycle", "learning-rate schedule, stepped per batch")
    warmup: float = field(0.2, "fraction of steps spent warming up (onecycle)")
    norm_lr_scale: float = field(1.0, "learning-rate multiplier for biases and norm parameters (airbench: 64)")
    label_smoothing: float = field(0.0, "label smoothing of the cross-entropy loss")
    lookahead: bool = field(False, "lookahead weight averaging every 5 steps, strongest at the end (airbench)")
    flip_tta: bool = field(False, "evaluate on each image and its mirror image, averaging the logits")
    channels_last: bool = field(True, "NHWC memory layout (faster convolutions with oneDNN and cuDNN)")


def parameter_groups(model: nn.Module, weight_decay: float, lr: float, norm_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """Decay matrices and kernels only: decaying BatchNorm scales and biases only hurts. Those 1-D
    parameters may take a larger learning rate: a shift moves a whole channel, and moves it slowly."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": lr * norm_lr_scale}]


def make_optimizer(model: nn.Module, cfg: ClassifierTrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    groups = parameter_groups(model, cfg.weight_decay, lr, cfg.norm_lr_scale)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


def lr_factor(step: int, total_steps: int, cfg: ClassifierTrainConfig) -> float:
    """Multiplier on the peak LR at ``step``: one-cycle is a linear ramp from 1/25 up to 1 over the
    warm-up, then a linear fall to 0 at the last step (clamped, so extra steps never go negative)."""
    t = min(step / max(total_steps, 1), 1.0)
    if cfg.schedule == "onecycle":
        if t < cfg.warmup:
            return 0.04 + 0.96 * t / cfg.warmup
        return max(0.0, (1.0 - t) / max(1.0 - cfg.warmup, 1e-8))
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0


def make_schedule(optimizer: torch.optim.Optimizer, cfg: ClassifierTrainConfig, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg))


class ClassifierModule(pl.LightningModule):
    def __init__(self, model: nn.Module, cfg: ClassifierTrainConfig, *, eval_split: str = "test",
                 hparams: dict[str, Any] | None = None):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last) if cfg.channels_last else model
        self.cfg = cfg
        self.eval_split = eval_split
        self.save_hyperparameters(hparams if hparams is not None else asdict(cfg))
        self.sums = EpochSums()
        self.lookahead = Lookahead() if cfg.lookahead else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # ---- shared bookkeeping: sums of loss, correct and count per split -------------------------------
    def _accumulate(self, split: str, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None:
        n = torch.tensor(float(len(y)), device=logits.device)
        sums = torch.stack([loss.detach().float() * n, (logits.argmax(1) == y).sum().float(), n])
        self.sums.add(split, sums)

    def _log_split(self, split: str) -> None:
        totals = self.sums.pop(split, self.trainer)
        if totals is None:
            return
        loss, correct, n = totals
        self.log(f"{split}_loss", loss / n, sync_dist=False, prog_bar=False)
        self.log(f"{split}_acc", correct / n, sync_dist=False, prog_bar=True)

    # ---- Lightning hooks ----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        self._accumulate("train", logits, y, loss)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.lookahead is not None:
            self.lookahead.step(self.model, self.global_step, int(self.trainer.estimated_stepping_batches))

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        if self.cfg.flip_tta:
            logits = (logits + self.model(x.flip(3))) / 2
        self._accumulate(self.eval_split, logits, y, F.cross_entropy(logits, y))

    def on_validation_epoch_end(self):
        self._log_split(self.eval_split)
        self._log_split("train")  # the training epoch has finished when validation runs

    def on_train_epoch_end(self):
        self._log_split("train")  # runs without an eval loader log here instead

    def configure_optimizers(self):
        optimizer = make_optimizer(self.model, self.cfg)
        schedule = make_schedule(optimizer, self.cfg, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.inference_mode()
def predict_logits(model: nn.Module, loader, *, flip_tta: bool = False, precision: str = "32-true") -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and targets of ``loader`` (no augmentation unless the loader adds it)."""
    model.eval()
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    logits, targets = [], []
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        with autocast:
            out = model(x)
            if flip_tta:
                out = (out + model(x.flip(3))) / 2
        logits.append(out.float().cpu())
        targets.append(y)
    return torch.cat(logits), torch.cat(targets)


def accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int = 1) -> float:
    topk = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (topk == targets[:, None]).any(1).float().mean().item()
