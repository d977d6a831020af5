"""The CIFAR-10 architectures of Exercise 1: one sequential baseline and three non-sequential
variants (multiple paths, multiple features, skip connections), plus the fast residual net used by
the time-to-accuracy benchmark.

Each is a small typed config and a function registered under a name; ``create_model(name, **overrides)``
builds it. Every model exposes ``forward_features`` and ``forward_head``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from cnnlab.config import field
from cnnlab.models.layers import ConvBNAct, FastStage, InceptionBlock, PatchWhitening, ResidualBlock, activation
from cnnlab.models.registry import register_model


class Classifier(nn.Module):
    """``features`` (B, 3, H, W) -> (B, F), then ``head`` (B, F) -> (B, classes)."""

    def __init__(self, features: nn.Module, head: nn.Module, config: object):
        super().__init__()
        self.features = features
        self.head = head
        self.config = asdict(config)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def dense_head(cin: int, hidden: list[int], dropout: float, num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(cin, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        cin = width
    layers.append(nn.Linear(cin, num_classes))
    return nn.Sequential(*layers)


# ---- sequential baseline ----------------------------------------------------------------------------


@dataclass
class SequentialConfig:
    widths: list[int] = field([32, 64, 128], "filters of each conv-conv-pool block")
    convs_per_block: int = field(2, "3x3 convs before each 2x2 max-pool")
    kernel: int = field(3, "conv kernel size")
    dense: list[int] = field([256], "hidden dense layers of the head")
    dropout: float = field(0.3, "dropout before each dense layer")
    block_dropout: float = field(0.0, "dropout after each max-pool (the Keras course CNN's 0.25)")
    batch_norm: bool = field(True, "BatchNorm after each conv")
    activation: str = field("relu", "relu, gelu or silu")


@register_model("sequential", SequentialConfig)
def sequential(cfg: SequentialConfig, num_classes: int) -> Classifier:
    layers: list[nn.Module] = []
    cin = 3
    for width in cfg.widths:
        for _ in range(cfg.convs_per_block):
            layers.append(ConvBNAct(cin, width, cfg.kernel, act=cfg.activation, batch_norm=cfg.batch_norm))
            cin = width
        layers.append(nn.MaxPool2d(2))
        if cfg.block_dropout > 0:
            layers.append(nn.Dropout(cfg.block_dropout))
    side = 32 // 2 ** len(cfg.widths)
    features = nn.Sequential(*layers, nn.Flatten())  # (B, C*side*side)
    return Classifier(features, dense_head(cin * side * side, cfg.dense, cfg.dropout, num_classes), cfg)


# ---- multiple paths: inception blocks ---------------------------------------------------------------


@dataclass
class MultipathConfig:
    stem: int = field(64, "filters of the 3x3 stem conv")
    blocks: list[list[int]] = field([[32, 48, 24, 24], [64, 96, 48, 48], [96, 128, 64, 64]],
                                    "per inception block: filters of its 1x1, 3x3, 5x5 and pool paths")
    dropout: float = field(0.2, "dropout before the classifier")
    activation: str = field("relu", "relu, gelu or silu")


@register_model("multipath", MultipathConfig)
def multipath(cfg: MultipathConfig, num_classes: int) -> Classifier:
    layers: list[nn.Module] = [ConvBNAct(3, cfg.stem, 3, act=cfg.activation)]
    cin = cfg.stem
    for i, (c1, c3, c5, cp) in enumerate(cfg.blocks):
        block = InceptionBlock(cin, c1, c3, c5, cp, act=cfg.activation)
        layers.append(block)
        cin = block.out_channels
        if i < len(cfg.blocks) - 1:
            layers.append(nn.MaxPool2d(2))
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, cin)
    head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cin, num_classes))
    return Classifier(features, head, cfg)


# ---- multiple features: taps at several depths ------------------------------------------------------


class MultiScaleFeatures(nn.Module):
    """Conv stages in sequence; the output of *every* stage is globally pooled, and the pooled vectors
    are concatenated, so the classifier sees edges and textures as well as object parts."""

    def __init__(self, widths: list[int], act: str):
        super().__init__()
        stages, cin = [], 3
        for width in widths:
            stages.append(nn.Sequential(ConvBNAct(cin, width, 3, act=act), ConvBNAct(width, width, 3, act=act),
                                        nn.MaxPool2d(2)))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = sum(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = []
        for stage in self.stages:
            x = stage(x)                           # (B, width_i, H_i, W_i)
            taps.append(self.pool(x).flatten(1))   # (B, width_i)
        return torch.cat(taps, dim=1)              # (B, sum(widths))

    def describe(self, describe_module) -> str:
        stages = " -> ".join(f"[{describe_module(s)}]" for s in self.stages)
        return f"{stages}; taps after each stage -> GlobalAvgPool -> concat ({self.out_features} features)"


@dataclass
class MultifeatureConfig:
    widths: list[int] = field([48, 96, 192], "filters of each conv-conv-pool stage (each one is tapped)")
    dense: list[int] = field([], "hidden dense layers after the concatenation")
    dropout: float = field(0.2, "dropout before the classifier")
    activation: str = field("relu", "relu, gelu or silu")


@register_model("multifeature", MultifeatureConfig)
def multifeature(cfg: MultifeatureConfig, num_classes: int) -> Classifier:
    features = MultiScaleFeatures(cfg.widths, cfg.activation)
    head = nn.Sequential(nn.Dropout(cfg.dropout), dense_head(features.out_features, cfg.dense, cfg.dropout, num_classes))
    return Classifier(features, head, cfg)


# ---- skip connections: residual blocks --------------------------------------------------------------


@dataclass
class ResidualConfig:
    stem: int = field(32, "filters of the 3x3 stem conv")
    widths: list[int] = field([32, 64, 128], "filters of each stage; stages after the first halve the size")
    blocks_per_stage: int = field(1, "residual blocks per stage")
    dropout: float = field(0.0, "dropout before the classifier")
    activation: str = field("relu", "relu, gelu or silu")


@register_model("residual", ResidualConfig)
def residual(cfg: ResidualConfig, num_classes: int) -> Classifier:
    layers: list[nn.Module] = [ConvBNAct(3, cfg.stem, 3, act=cfg.activation)]
    cin = cfg.stem
    for i, width in enumerate(cfg.widths):
        for j in range(cfg.blocks_per_stage):
            stride = 2 if i > 0 and j == 0 else 1
            layers.append(ResidualBlock(cin, width, stride, act=cfg.activation))
            cin = width
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, cin)
    head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cin, num_classes)) if cfg.dropout else nn.Linear(cin, num_classes)
    return Classifier(features, head, cfg)


@dataclass
class FastResidualConfig:
    widths: list[int] = field([64, 256, 256], "filters of the three pooled stages (airbench94 width)")
    depth: int = field(1, "conv -> BN -> act layers in each stage's residual branch")
    whiten: bool = field(True, "2x2 stem with frozen patch-whitening filters fitted to the training images (else a trained 2x2 conv)")
    whiten_bias_epochs: int = field(3, "epochs during which the whitening stem's bias trains before it is frozen (0: always)")
    bn_momentum: float = field(0.4, "BatchNorm running-statistics momentum (PyTorch convention: weight of the new batch)")
    bn_scale: bool = field(False, "train BatchNorm scales too (airbench keeps them at 1 and trains only the shifts)")
    logit_scale: float = field(1 / 9, "multiplier on the logits, which keeps early training stable at high LR")
    activation: str = field("gelu", "relu, gelu or silu")
    shortcut: bool = field(True, "identity shortcut around each stage's second conv (off: airbench94's plain stages)")


class ScaledLinear(nn.Linear):
    def __init__(self, cin: int, cout: int, scale: float):
        super().__init__(cin, cout, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


@register_model("residual_fast", FastResidualConfig)
def residual_fast(cfg: FastResidualConfig, num_classes: int) -> Classifier:
    """The time-to-accuracy net: airbench94's layout with an identity shortcut around each stage's
    second conv. ``init_from_data`` fits the whitening stem; ``cifar train`` calls it."""
    stem = PatchWhitening(3, bias_epochs=cfg.whiten_bias_epochs) if cfg.whiten else nn.Conv2d(3, 24, 2, padding=0)
    layers: list[nn.Module] = [stem, activation(cfg.activation)]  # 32 -> 31
    cin = stem.out_channels
    for width in cfg.widths:
        layers.append(FastStage(cin, width, cfg.depth, act=cfg.activation, bn_momentum=cfg.bn_momentum,
                                bn_scale=cfg.bn_scale, shortcut=cfg.shortcut))
        cin = width
    features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())  # (B, cin)
    return Classifier(features, ScaledLinear(cin, num_classes, cfg.logit_scale), cfg)
