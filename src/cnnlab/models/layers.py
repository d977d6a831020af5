"""Building blocks shared by the CIFAR-10 networks. Each block can ``describe()`` itself, so the
architecture column of Table 1 is generated from the built model (see ``describe.py``)."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn

from cnnlab.registry import Registry

ACTIVATIONS = Registry("activation")
for _name, _cls in {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}.items():
    ACTIVATIONS.register(_name)(_cls)


def activation(name: str) -> nn.Module:
    """A new activation module by name (``CnnlabError`` naming the known ones on a typo)."""
    return ACTIVATIONS.create(name)


class ConvBNAct(nn.Sequential):
    """Conv (no bias when followed by BN) -> BatchNorm -> activation. Padding defaults to 'same';
    ``norm`` builds the BatchNorm from the channel count (e.g. ``partial(batch_norm, momentum=0.4)``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
                 act: str | None = "relu", batch_norm: bool = True,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d):
        padding = kernel // 2 if padding is None else padding
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, bias=not batch_norm)]
        if batch_norm:
            layers.append(norm(cout))
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class InceptionBlock(nn.Module):
    """Four parallel paths over the same input, concatenated along channels:
    1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 (a 5x5 field) | 3x3 max-pool -> 1x1."""

    def __init__(self, cin: int, c1: int, c3: int, c5: int, cpool: int, act: str = "relu", batch_norm: bool = True):
        super().__init__()
        cba = lambda i, o, k: ConvBNAct(i, o, k, act=act, batch_norm=batch_norm)  # noqa: E731
        self.path_1x1 = cba(cin, c1, 1)
        self.path_3x3 = nn.Sequential(cba(cin, max(c3 // 2, 8), 1), cba(max(c3 // 2, 8), c3, 3))
        self.path_5x5 = nn.Sequential(cba(cin, max(c5 // 2, 8), 1), cba(max(c5 // 2, 8), c5, 3), cba(c5, c5, 3))
        self.path_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), cba(cin, cpool, 1))
        self.out_channels = c1 + c3 + c5 + cpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1 = self.path_1x1(x)    # (B, c1, H, W)
        p3 = self.path_3x3(x)    # (B, c3, H, W)
        p5 = self.path_5x5(x)    # (B, c5, H, W)
        pp = self.path_pool(x)   # (B, cpool, H, W)
        return torch.cat([p1, p3, p5, pp], dim=1)  # (B, c1+c3+c5+cpool, H, W)

    def describe(self, describe_module) -> str:
        paths = " | ".join(f"{name}: {describe_module(getattr(self, 'path_' + name))}"
                           for name in ("1x1", "3x3", "5x5", "pool"))
        return f"Inception[{paths}] -> concat ({self.out_channels} ch)"


class ResidualBlock(nn.Module):
    """Two 3x3 convs plus a shortcut: identity when shapes match, else a 1x1 projection."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: str = "relu", batch_norm: bool = True):
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, 3, stride, act=act, batch_norm=batch_norm)
        self.conv2 = ConvBNAct(cout, cout, 3, 1, act=None, batch_norm=batch_norm)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else ConvBNAct(cin, cout, 1, stride, padding=0, act=None, batch_norm=batch_norm))
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv2(self.conv1(x))  # (B, cout, H/stride, W/stride)
        shortcut = self.shortcut(x)           # same shape
        return self.act(residual + shortcut)

    def describe(self, describe_module) -> str:
        kind = "identity" if isinstance(self.shortcut, nn.Identity) else f"projection {describe_module(self.shortcut)}"
        return f"Residual[{describe_module(self.conv1)} -> {describe_module(self.conv2)}] + {kind}"


class PatchWhitening(nn.Conv2d):
    """A 2x2 stem conv whose filters whiten image patches (airbench): ``fit(images)`` sets them to the
    eigenvectors of the patch covariance scaled by 1/sqrt(eigenvalue), each also negated (so a following
    GELU keeps both signs), and freezes them. Until ``fit`` it is a plain conv.

    Only the bias trains, and only for the first ``bias_epochs`` epochs (0: throughout): airbench freezes
    it after 3, once it has found each filter's threshold, so that it stops chasing the fast-moving layers
    above it. The trainer calls ``start_epoch`` at each epoch's start."""

    def __init__(self, cin: int = 3, kernel: int = 2, eps: float = 5e-4, bias_epochs: int = 0):
        super().__init__(cin, 2 * cin * kernel * kernel, kernel, padding=0, bias=True)
        self.eps, self.bias_epochs = eps, bias_epochs

    def start_epoch(self, epoch: int) -> None:
        """``epoch``: 0-based index of the epoch about to train."""
        self.bias.requires_grad_(self.bias_epochs <= 0 or epoch < self.bias_epochs)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """``images``: normalised (N, C, H, W) training images; a few thousand are plenty."""
        c, k = self.in_channels, self.kernel_size[0]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)           # (N, C, H', W', k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)  # one row per patch, conv order
        covariance = patches.T.double() @ patches.double() / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues[:, None] + self.eps)).float().view(-1, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]))
        self.weight.requires_grad_(False)


def init_from_data(model: nn.Module, images: torch.Tensor) -> None:
    """Let every data-initialised layer of ``model`` (e.g. ``PatchWhitening``) see the training images."""
    for m in model.modules():
        if isinstance(m, PatchWhitening):
            m.fit(images)


def batch_norm(channels: int, momentum: float = 0.1, train_scale: bool = True, eps: float = 1e-5) -> nn.BatchNorm2d:
    """BatchNorm whose scale may stay fixed at 1, so that only the shift trains (as airbench does)."""
    norm = nn.BatchNorm2d(channels, momentum=momentum, eps=eps)
    norm.weight.requires_grad_(train_scale)
    return norm


class FastStage(nn.Module):
    """ResNet-9 / airbench-style stage: conv -> 2x2 max-pool -> BN -> act, then ``depth`` conv -> BN -> act
    added back through an identity shortcut. Pooling before BN quarters the normalisation cost; the convs
    start as identities on their first channels (Dirac init), so the untrained net passes images through."""

    def __init__(self, cin: int, cout: int, depth: int = 1, act: str = "gelu", bn_momentum: float = 0.1,
                 bn_scale: bool = True, shortcut: bool = True):
        super().__init__()
        self.shortcut = shortcut
        norm = partial(batch_norm, momentum=bn_momentum, train_scale=bn_scale, eps=1e-12)
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm = norm(cout)
        self.act = activation(act)
        self.residual = nn.Sequential(*[ConvBNAct(cout, cout, 3, act=act, norm=norm) for _ in range(depth)])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.dirac_(m.weight[:m.in_channels])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm(self.pool(self.conv(x))))  # (B, cout, H/2, W/2)
        return h + self.residual(h) if self.shortcut else self.residual(h)

    def describe(self, describe_module) -> str:
        if not self.shortcut:
            return f"{describe_module(self.conv)} -> {describe_module(self.pool)} -> {describe_module(self.residual)}"
        return (f"{describe_module(self.conv)} -> {describe_module(self.pool)} -> "
                f"Residual[{describe_module(self.residual)}] + identity")
