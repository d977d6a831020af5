"""The Lightning module every autoencoder trains with (the dense AE, its sweep, the denoising conv AE).

Batches are ``(input, target)`` pairs of (B, 1, 28, 28) floats in [0, 1]: the same images for a plain
autoencoder, noisy inputs and clean targets for a denoising one. Loss, squared error and pixel counts
are summed over the epoch, so the logged ``*_loss``, ``test_mse`` and ``test_psnr`` (dB, from the
epoch's MSE) are exact whatever the batch sizes.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.metrics import psnr_from_mse
from cnnlab.train.inference import in_batches, run_batches
from cnnlab.train.options import AutoencoderOptim
from cnnlab.train.sums import EpochSums

# Reconstruction losses by name; both take (prediction in [0, 1], target in [0, 1]).
LOSSES = {"bce": F.binary_cross_entropy, "mse": F.mse_loss}


class AutoencoderModule(pl.LightningModule):
    """An autoencoder trained with Adam on ``optim.loss``; logs ``{split}_loss`` per epoch and, on the
    evaluated split ``eval_split`` (val or test), ``{split}_mse`` and ``{split}_psnr``. ``hparams`` is
    stored in its checkpoints."""

    def __init__(self, model: nn.Module, optim: AutoencoderOptim, *, channels_last: bool = True,
                 eval_split: str = "test", hparams: dict[str, Any] | None = None):
        super().__init__()
        self.eval_split = eval_split
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.optim = optim
        self.channels_last = channels_last
        self.loss_fn = LOSSES[optim.loss]
        self.from_logits = bce_from_logits(self.model, optim.loss)  # fixed per model: not asked every step
        self.save_hyperparameters(hparams or {})
        self.sums = EpochSums()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._input(x))

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    # ---- shared bookkeeping: sums of loss, squared error, images and pixels per split ----------------
    def _shared_step(self, batch, split: str) -> torch.Tensor:
        x, target = batch
        if self.from_logits:
            out = self.model.forward_logits(self._input(x))
        else:
            out = self(x)
        # Losses are not autocast-safe and PSNR needs full precision: score in float32 whatever the precision.
        with torch.autocast(self.device.type, enabled=False):
            out = out.float()
            if self.from_logits:  # a NaN logit gives a NaN loss, which FiniteLoss reports
                loss = F.binary_cross_entropy_with_logits(out, target)
                reconstruction = torch.sigmoid(out.detach()) if split != "train" else None  # not scored
            else:
                reconstruction = out
                # BCE on probabilities refuses NaN or infinite inputs; FiniteLoss should report a NaN loss
                # instead. On the CPU its own check raises, which costs nothing per step; on a GPU it is a
                # device-side assert that ruins the CUDA context, so the inputs are checked first there.
                if reconstruction.device.type != "cpu" and not bool(torch.isfinite(reconstruction).all()):
                    return self._nan_step(split, reconstruction)
                try:
                    loss = self.loss_fn(reconstruction, target)
                except RuntimeError:
                    if bool(torch.isfinite(reconstruction).all()):
                        raise
                    return self._nan_step(split, reconstruction)
            # Training logs only the loss: the squared error is summed on evaluated splits alone, which
            # keeps a pass over every pixel out of each training step.
            squared_error = (F.mse_loss(reconstruction.detach(), target, reduction="sum") if split != "train"
                             else torch.zeros((), device=loss.device))
        n, pixels = len(target), target.numel()
        self.sums.add(split, torch.stack([loss.detach() * n, squared_error, loss.new_tensor(n), loss.new_tensor(pixels)]))
        return loss

    def _nan_step(self, split: str, reconstruction: torch.Tensor) -> torch.Tensor:
        """A NaN loss (still attached to the graph) and NaN sums, for a non-finite reconstruction."""
        self.sums.add(split, torch.full((4,), float("nan"), device=reconstruction.device))
        return (reconstruction * float("nan")).sum()

    def _log_split(self, split: str) -> None:
        totals = self.sums.pop(split, self.trainer)
        if totals is None:
            return
        loss_sum, squared_error, images, pixels = totals
        self.log(f"{split}_loss", loss_sum / images, prog_bar=split != "train")
        if split != "train":
            mse = squared_error / pixels
            self.log(f"{split}_mse", mse)
            self.log(f"{split}_psnr", psnr_from_mse(mse), prog_bar=True)

    # ---- Lightning hooks ----------------------------------------------------------------------------
    def on_fit_start(self):
        # Adam's second moments of tiny gradients go subnormal, which is several times slower on x86 CPUs
        # for the dense AE (bench/notmnist.py); flushing them to zero changes no result we report.
        torch.set_flush_denormal(True)

    def on_fit_end(self):
        torch.set_flush_denormal(False)

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, self.eval_split)

    def on_validation_epoch_end(self):
        self._log_split(self.eval_split)
        self._log_split("train")  # the training epoch has finished when validation runs

    def on_train_epoch_end(self):
        self._log_split("train")  # runs without an eval loader log here instead

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.optim.lr)


def bce_from_logits(model: nn.Module, loss: str) -> bool:
    """True when ``loss`` is BCE and ``model`` has logits (``Autoencoder.has_logits``): BCE is then computed
    from the logits, the same loss as from the sigmoid's output, numerically stabler (no log of a rounded 0
    or 1), and a fused kernel where BCE on probabilities is a slow one on a CPU (bench/notmnist.py times
    both). MSE stays on the sigmoid's output: that is its definition."""
    return loss == "bce" and getattr(model, "has_logits", False)


def reconstruct_scored(model: nn.Module, x: torch.Tensor, target: torch.Tensor, loss: str,
                       batch_size: int = 1024) -> tuple[torch.Tensor, float]:
    """``reconstruct(model, x)`` and its mean ``loss`` ("bce" or "mse") against ``target`` (N, 1, 28, 28),
    from one pass over ``x``, the loss computed as training computes it (see ``bce_from_logits``): a run's
    final test loss and its per-epoch ones are the same function."""
    if bce_from_logits(model, loss):
        logits = run_batches(model, model.forward_logits, in_batches(x, batch_size), empty=tuple(x.shape))
        return torch.sigmoid(logits), float(F.binary_cross_entropy_with_logits(logits, target))
    reconstruction = reconstruct(model, x, batch_size)
    return reconstruction, float(LOSSES[loss](reconstruction, target))


def reconstruct(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``model(x)`` in eval mode, batch by batch, on the model's device; a CPU float tensor shaped like ``x``."""
    return run_batches(model, model, in_batches(x, batch_size), empty=tuple(x.shape))


def encode_all(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The codes of ``x`` (N, 1, 28, 28) flattened to (N, code_size), on the CPU."""
    return run_batches(model, lambda b: model.encode(b).flatten(1), in_batches(x, batch_size))
