"""A transfer-learning classifier: a timm backbone, its pooling, and a new head.

    images (B, 3, I, I) -> backbone.forward_features -> (B, C, h, w)
                        -> backbone.forward_head(pre_logits=True) -> pooled features (B, F)
                        -> head -> logits (B, K)

timm's ``forward_head(pre_logits=True)`` does each model's own pooling (average pooling for CNNs, the
class token for ViTs, pooling + norm for ConvNeXt), so the head always sees what ImageNet's classifier saw.

``HeadOnFeatures`` is the same classifier as trained from cached features: the head alone, fed pooled
features (B, F), under the very parameter names it has inside ``TransferNet`` (``head.*``), so its
checkpoints stay small (no copy of an unchanged backbone per epoch) and load straight back into the net.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.backbones import create_backbone
from cnnlab.models.heads import create_head


class TransferNet(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def num_features(self) -> int:
        return pooled_width(self.backbone)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features: (B, 3, I, I) -> (B, F)."""
        feature_map = self.backbone.forward_features(images)  # (B, C, h, w), or tokens for a ViT
        return self.backbone.forward_head(feature_map, pre_logits=True)  # (B, F)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B, K)."""
        return self.head(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(images)  # (B, F)
        return self.forward_head(features)  # (B, K)


class HeadOnFeatures(nn.Module):
    """A ``TransferNet``'s head (shared, not copied) as a model of cached features: (B, F) -> (B, K)."""

    def __init__(self, net: TransferNet):
        super().__init__()
        self.head = net.head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


def pooled_width(backbone: nn.Module) -> int:
    """F, the width of ``forward_head(pre_logits=True)``: timm's ``head_hidden_size`` where a model has
    layers between pooling and classifier (VGG: 4096, MobileNetV3: 1280), else ``num_features``."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


def create_transfer_net(backbone: str, head: str, num_classes: int, *, pretrained: bool = True,
                        activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False) -> TransferNet:
    trunk = create_backbone(backbone, pretrained=pretrained)
    top = create_head(head, pooled_width(trunk), num_classes, activation=activation, dropout=dropout,
                      batch_norm=batch_norm)
    return TransferNet(trunk, top)
