"""The parts every training config is composed of: the run, the hardware, the optimisation.

Each is a small dataclass that one piece of the engine takes (``open_run`` the ``RunOptions``, the
Trainer the ``Hardware``, the Lightning modules their ``*Optim``). Commands compose them with their own
data and model parts (``cnnlab.experiments.configs``). Torch-free on purpose: ``--help`` reads these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cnnlab.config import field
from cnnlab.errors import ConfigError


@dataclass
class RunOptions:
    """Run: its folder and seed, and what to do when the folder exists."""

    name: str = field("", "run name: the folder runs/<exercise>/<name> (default: what the run is, e.g. residual-s0)")
    runs_dir: str = field("", "folder holding the runs (default: ./runs, or $CNNLAB_RUNS)")
    seed: int = field(0, "random seed for initialisation, shuffling, subsets and augmentation")
    resume: bool = field(False, "continue the named run from its checkpoints/last.ckpt")
    force: bool = field(False, "replace an existing run of the same name instead of adding a suffix")
    logger: Literal["none", "csv", "tensorboard"] = field("csv", "Lightning logger writing into the run folder")
    progress: bool = field(True, "progress bars on stderr, when it is a terminal")

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"run.seed: must be at least 0, got {self.seed}")
        if self.force and self.resume:
            raise ConfigError("run: --force replaces a run and --resume continues it: give one of them")


@dataclass
class Hardware:
    """Hardware: passed straight to Lightning's Trainer (DDP on several GPUs or nodes is Lightning's)."""

    accelerator: str = field("auto", "Lightning accelerator: auto, cpu, gpu, ...")
    devices: str = field("auto", "Lightning devices: auto, a count, or a list such as 0,1")
    num_nodes: int = field(1, "machines for multi-node DDP")
    strategy: str = field("auto", "Lightning strategy: auto, ddp, ddp_spawn, ...")
    precision: str = field("auto", "auto (bf16-mixed on CUDA and on CPUs with native bf16, else 32-true), "
                                   "32-true, bf16-mixed, 16-mixed")
    channels_last: bool = field(True, "NHWC memory layout (faster convolutions with oneDNN and cuDNN)")


@dataclass
class ClassifierOptim:
    """Optimisation of a classifier: length, batch, optimizer, schedule, regularisation."""

    epochs: int = field(10, "training epochs")
    early_stopping_patience: int = field(0, "stop after this many epochs without improvement (0: never)")
    batch_size: int = field(64, "images (or cached feature vectors) per batch, per device")
    # AdamW by default: it learns within the first hundred steps at one learning rate for every
    # architecture and precision, where SGD needs a per-net lr and many epochs (the quick runs people try
    # first). The SGD recipes (Table 1's, airbench's) set their optimizer explicitly.
    optimizer: Literal["sgd", "adamw"] = field("adamw", "adamw or sgd (momentum, Nesterov)")
    lr: float = field(1e-3, "peak learning rate")
    momentum: float = field(0.9, "SGD momentum")
    weight_decay: float = field(0.05, "weight decay on conv/linear weights (not on biases or norms); decoupled for adamw")
    schedule: Literal["onecycle", "cosine", "constant"] = field("onecycle", "learning-rate schedule, stepped per batch")
    warmup: float = field(0.2, "fraction of steps spent warming up (onecycle)")
    warmup_from: float = field(0.04, "onecycle's first learning rate, as a fraction of the peak (airbench: 0.2)")
    final_lr: float = field(0.0, "onecycle's last learning rate, as a fraction of the peak (airbench: 0.07)")
    norm_lr_scale: float = field(1.0, "learning-rate multiplier for norm layers' parameters (airbench: 64)")
    decay_norms: bool = field(False, "decay biases and norm parameters too, by the same amount per step as the weights "
                                     "(airbench); else only conv/linear weights decay")
    label_smoothing: float = field(0.0, "label smoothing of the cross-entropy loss")
    lookahead: bool = field(False, "lookahead weight averaging every 5 steps, strongest at the end (airbench)")

    def __post_init__(self) -> None:
        check_length(self.epochs, self.batch_size)


@dataclass
class AutoencoderOptim:
    """Optimisation of an autoencoder: length, batch, Adam's learning rate, the loss."""

    epochs: int = field(50, "training epochs")
    early_stopping_patience: int = field(0, "stop after this many epochs without improvement (0: never)")
    batch_size: int = field(256, "images per batch (per device)")
    lr: float = field(1e-3, "Adam learning rate")
    loss: Literal["bce", "mse"] = field("bce", "reconstruction loss: binary cross-entropy or mean squared error")

    def __post_init__(self) -> None:
        check_length(self.epochs, self.batch_size)


def check_length(epochs: int, batch_size: int) -> None:
    """``ConfigError`` unless there is at least one epoch of batches of at least one example."""
    if epochs < 1 or batch_size < 1:
        key, value = ("optim.epochs", epochs) if epochs < 1 else ("optim.batch_size", batch_size)
        raise ConfigError(f"{key}: must be at least 1, got {value}")
