"""A transfer-learning classifier: a timm backbone, its pooling, and a new head.

    images (B, 3, I, I) -> backbone.forward_features -> (B, C, h, w)
                        -> backbone.forward_head(pre_logits=True) -> pooled features (B, F)
                        -> head -> logits (B, K)

timm's ``forward_head(pre_logits=True)`` does each model's own pooling (average pooling for CNNs, the
class token for ViTs, pooling + norm for ConvNeXt), so the head always sees what ImageNet's classifier saw.

``from_features = True`` makes ``forward`` take pooled features (B, F) instead of images: the frozen
strategy trains the head from cached features while the checkpoint still holds the whole classifier.
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
        self.from_features = False

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x if self.from_features else self.forward_features(x)
        return self.forward_head(features)


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
