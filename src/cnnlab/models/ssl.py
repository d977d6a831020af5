"""The self-supervised encoder of Exercise 4 f) and g): SimCLR (Chen et al., 2020) on notMNIST letters.

``SimCLR`` = a small conv encoder (the denoising autoencoder's encoder widths, 32-64-128, with BatchNorm,
globally pooled to 128 features) + lightly's SimCLR projection head (128 -> 128 -> ``out_dim``). The
features a probe reads are the encoder's, before the projection head, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

FEATURES = 128  # the encoder's output: (B, 128)


def ssl_encoder() -> nn.Sequential:
    """(B, 1, 28, 28) in [0, 1] -> (B, 128) features."""
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(*block(1, 32), nn.MaxPool2d(2),      # (B, 32, 14, 14)
                         *block(32, 64), nn.MaxPool2d(2),     # (B, 64, 7, 7)
                         *block(64, FEATURES),                # (B, 128, 7, 7)
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 128)


class SimCLR(nn.Module):
    """Encoder + projection head; ``forward`` gives the projections the contrastive loss compares,
    ``encode`` the features a probe reads."""

    def __init__(self, out_dim: int = 64):
        super().__init__()
        from lightly.models.modules import SimCLRProjectionHead

        self.encoder = ssl_encoder()
        self.projection_head = SimCLRProjectionHead(FEATURES, FEATURES, out_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head(self.encoder(x))
