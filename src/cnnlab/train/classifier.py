"""The Lightning module every classifier trains with (CIFAR-10 nets, Food-101 heads and fine-tunes).

Accuracy is counted, not averaged: correct predictions and examples are summed over the epoch (and
over DDP ranks), so the logged accuracy is exact whatever the batch sizes.
"""

from __future__ import annotations

import math

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.train.options import ClassifierOptim
from cnnlab.train.inference import run_batches
from cnnlab.metrics import topk_accuracy
from cnnlab.train.lookahead import Lookahead
from cnnlab.train.sums import EpochSums


# Layers whose parameters count as norm parameters for ``norm_lr_scale``.
NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def parameter_groups(model: nn.Module, weight_decay: float, lr: float, norm_lr_scale: float = 1.0,
                     decay_norms: bool = False) -> list[dict[str, Any]]:
    """Decay matrices and kernels only, by default: on long runs decaying BatchNorm scales and biases
    only hurts. Norm layers' parameters may take a larger learning rate (airbench: 64x on BatchNorm
    shifts): a shift moves a whole channel, and moves it slowly. Other biases (a stem's, a linear
    layer's) keep ``lr``. ``decay_norms`` decays those too, by the weights' amount per step (decay per
    step is lr x weight decay, so a group with k times the lr gets 1/k of the weight decay), as airbench
    does: it keeps 64x-lr shifts from drifting. Empty groups are left out."""
    in_norms = {id(p) for m in model.modules() if isinstance(m, NORMS) for p in m.parameters(recurse=False)}
    decay, norms, biases = [], [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else norms if id(p) in in_norms else biases).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": lr},
              {"params": norms, "weight_decay": weight_decay / norm_lr_scale if decay_norms else 0.0,
               "lr": lr * norm_lr_scale},
              {"params": biases, "weight_decay": weight_decay if decay_norms else 0.0, "lr": lr}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, optim: ClassifierOptim, lr: float | None = None) -> torch.optim.Optimizer:
    lr = optim.lr if lr is None else lr
    groups = parameter_groups(model, optim.weight_decay, lr, optim.norm_lr_scale, optim.decay_norms)
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=optim.momentum, nesterov=optim.momentum > 0)


def lr_factor(step: int, total_steps: int, optim: ClassifierOptim) -> float:
    """Multiplier on the peak LR at ``step``: one-cycle is a linear ramp from ``warmup_from`` (1/25 by
    default) up to 1 over the warm-up, then a linear fall to ``final_lr`` (0) at the last step (clamped,
    so extra steps stay there)."""
    t = min(step / max(total_steps, 1), 1.0)
    if optim.schedule == "onecycle":
        if t < optim.warmup:
            return optim.warmup_from + (1.0 - optim.warmup_from) * t / optim.warmup
        fall = (1.0 - t) / max(1.0 - optim.warmup, 1e-8)  # 1 -> 0
        return optim.final_lr + (1.0 - optim.final_lr) * fall
    if optim.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0


def make_schedule(optimizer: torch.optim.Optimizer, optim: ClassifierOptim, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, optim))


class ClassifierModule(pl.LightningModule):
    """A classifier trained by cross-entropy with ``optim``; logs ``{split}_loss`` and ``{split}_acc`` per
    epoch, with ``flip_tta`` averaging each evaluated image's logits with its mirror image's.

    ``eval_split`` names the split of each evaluation loader, in order (one name, or several when the
    Trainer gets a list of loaders: a run that picks its checkpoint on test also scores val each epoch,
    so that the epoch val would have chosen is known). ``hparams`` (the run's whole config, as plain data)
    is stored in its checkpoints."""

    def __init__(self, model: nn.Module, optim: ClassifierOptim, *, channels_last: bool = True,
                 flip_tta: bool = False, eval_split: str | tuple[str, ...] = "test",
                 hparams: dict[str, Any] | None = None):
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.optim = optim
        self.flip_tta = flip_tta
        self.eval_splits = (eval_split,) if isinstance(eval_split, str) else tuple(eval_split)
        self.save_hyperparameters(hparams or {})
        self.sums = EpochSums()
        self.lookahead = Lookahead() if optim.lookahead else None

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
        loss = F.cross_entropy(logits, y, label_smoothing=self.optim.label_smoothing)
        self._accumulate("train", logits, y, loss)
        return loss

    def on_train_epoch_start(self):
        # Layers that change with the epoch (a whitening stem's bias that freezes) hear of each one;
        # a resumed run tells them the epoch it resumes at.
        for m in self.model.modules():
            if hasattr(m, "start_epoch"):
                m.start_epoch(self.current_epoch)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.lookahead is not None:
            self.lookahead.step(self.model, self.global_step, int(self.trainer.estimated_stepping_batches))

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        logits = self.model(x)
        if self.flip_tta:
            logits = (logits + self.model(x.flip(3))) / 2
        self._accumulate(self.eval_splits[dataloader_idx], logits, y, F.cross_entropy(logits, y))

    def on_validation_epoch_end(self):
        for split in self.eval_splits:
            self._log_split(split)
        self._log_split("train")  # the training epoch has finished when validation runs

    def on_train_epoch_end(self):
        self._log_split("train")  # runs without an eval loader log here instead

    def configure_optimizers(self):
        optimizer = make_optimizer(self.model, self.optim)
        schedule = make_schedule(optimizer, self.optim, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def predict_logits(model: nn.Module, loader, *, flip_tta: bool = False, shift_tta: bool = False,
                   precision: str = "32-true") -> tuple[torch.Tensor, torch.Tensor]:
    """All logits (N, K) float32 and targets (N,) of ``loader`` (no augmentation unless the loader adds it),
    with bf16 autocast when ``precision`` is a bf16 one; ``flip_tta`` averages each image's logits with
    its mirror image's; ``shift_tta`` (with ``flip_tta``) weighs that average half and half with the same
    average over the image translated 1 px down-right and 1 px up-left, edges mirrored: airbench's 6 views.
    """
    targets: list[torch.Tensor] = []

    def inputs():
        for x, y in loader:
            targets.append(y)
            yield x

    def views(x: torch.Tensor) -> torch.Tensor:
        return (model(x) + model(x.flip(3))) / 2 if flip_tta else model(x)

    def forward(x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if not (flip_tta and shift_tta):
            return views(x)
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = (views(padded[..., :h, :w]) + views(padded[..., 2:, 2:])) / 2
        return (views(x) + shifted) / 2

    logits = run_batches(model, forward, inputs(), bf16=precision.startswith("bf16"))
    return logits, torch.cat(targets)


accuracy = topk_accuracy  # top-k accuracy, written once (cnnlab.metrics)
