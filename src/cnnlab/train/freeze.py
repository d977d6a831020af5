"""Freezing parts of a network, BatchNorm statistics included.

``freeze(module)`` turns gradients off *and* pins every BatchNorm inside ``module`` to inference mode:
a frozen BatchNorm keeps normalising with its ImageNet running statistics and never updates them,
even when Lightning calls ``model.train()`` on the parent at the start of every epoch. (Turning off
``requires_grad`` alone is not enough: a BatchNorm in train mode would still normalise with batch
statistics and overwrite its running mean and variance.) The keras.io fine-tuning recipe does the
same with ``training=False``.

``unfreeze_last(backbone, k)`` makes the last ``k`` blocks of a timm backbone trainable again (or
all of it with ``k="all"``); the blocks are timm's own coarse parameter groups (``group_matcher``):
the stages of a ResNet or EfficientNet, the transformer blocks of a ViT.
"""

from __future__ import annotations

import types

from timm.models import group_parameters
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from cnnlab.errors import ConfigError


def _train_stays_eval(bn: nn.Module, mode: bool = True) -> nn.Module:
    """Replacement for a frozen BatchNorm's ``train``: whatever the parent asks, stay in eval mode."""
    return nn.Module.train(bn, False)


def _pin_eval(bn: nn.Module) -> None:
    bn.train = types.MethodType(_train_stays_eval, bn)  # instance attribute shadows nn.Module.train
    bn.eval()


def _unpin(bn: nn.Module) -> None:
    bn.__dict__.pop("train", None)


def is_pinned(bn: nn.Module) -> bool:
    return "train" in bn.__dict__


def freeze(module: nn.Module) -> nn.Module:
    """No gradients for any parameter; every BatchNorm inside stays in eval mode from now on."""
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            _pin_eval(m)
    module.eval()
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Undo ``freeze``: gradients on, BatchNorms follow their parent's train/eval mode again."""
    for p in module.parameters():
        p.requires_grad_(True)
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            _unpin(m)
    module.train()
    return module


def block_groups(backbone: nn.Module) -> list[list[str]]:
    """The backbone's blocks in forward order, each a list of parameter names (timm's coarse groups:
    the stem first, then each stage; a final conv or norm is grouped with the last stage)."""
    if not hasattr(backbone, "group_matcher"):
        return [[f"{name}.{p}" for p, _ in child.named_parameters()] for name, child in backbone.named_children()]
    groups = group_parameters(backbone, backbone.group_matcher(coarse=True))  # {ordinal: [param names]}
    return [names for _, names in sorted(groups.items())]


def unfreeze_last(backbone: nn.Module, k: int | str, *, train_bn: bool = True) -> list[str]:
    """Freeze ``backbone``, then make its last ``k`` blocks trainable (``"all"``: every block).

    BatchNorms of the still-frozen blocks stay in inference mode. Those of the unfrozen blocks follow
    the parent's train/eval mode with ``train_bn``; without it they keep their ImageNet statistics too
    (scale and shift still learn), as keras.io's recipe does: small food batches then cannot drag the
    statistics the pretrained weights were tuned to. Returns the trainable parameter names.
    """
    groups = block_groups(backbone)
    count = len(groups) if k == "all" else int(k)
    if not 0 <= count <= len(groups):
        raise ConfigError(f"--unfreeze {k}: this backbone has {len(groups)} blocks (stem + stages); "
                          f"use 0..{len(groups)} or all")
    freeze(backbone)
    trainable = {name for group in groups[len(groups) - count:] for name in group}
    for name, p in backbone.named_parameters():
        if name in trainable:
            p.requires_grad_(True)
    for name, m in backbone.named_modules():
        own = [f"{name}.{p}" if name else p for p, _ in m.named_parameters(recurse=False)]
        if train_bn and isinstance(m, _BatchNorm) and own and all(n in trainable for n in own):
            _unpin(m)
            m.train()
    return sorted(trainable)


def count_trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
