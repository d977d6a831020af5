"""The Lightning module of the self-supervised run: SimCLR's NT-Xent loss (lightly's ``NTXentLoss``) on two
views of each image. Logs ``train_loss`` per epoch, averaged exactly over the epoch's pairs."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from cnnlab.train.inference import in_batches, run_batches
from cnnlab.train.sums import EpochSums


class SimCLRModule(pl.LightningModule):
    """``model`` (``models.ssl.SimCLR``) trained by NT-Xent at ``temperature`` with AdamW."""

    def __init__(self, model: nn.Module, *, lr: float, weight_decay: float, temperature: float,
                 hparams: dict[str, Any] | None = None):
        super().__init__()
        from lightly.loss import NTXentLoss

        self.model = model
        self.lr, self.weight_decay = lr, weight_decay
        self.loss_fn = NTXentLoss(temperature=temperature)
        self.save_hyperparameters(hparams or {})
        self.sums = EpochSums()

    def training_step(self, batch, batch_idx):
        a, b = batch
        loss = self.loss_fn(self.model(a), self.model(b))
        n = torch.tensor(float(len(a)), device=loss.device)
        self.sums.add("train", torch.stack([loss.detach().float() * n, n]))
        return loss

    def on_train_epoch_end(self):
        totals = self.sums.pop("train", self.trainer)
        if totals is not None:
            self.log("train_loss", totals[0] / totals[1])

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def ssl_features(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Encoder features (N, 128) float32 of images (N, 1, 28, 28) in [0, 1], in eval mode."""
    return run_batches(model, model.encode, in_batches(images, batch_size))
