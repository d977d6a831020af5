"""A pretrained backbone's preprocessing, applied to whole uint8 batches in memory.

Everything comes from timm's data config of the model (``timm.data.resolve_model_data_config``):
input size, crop fraction, interpolation, mean and std. Images are cached at ``stored_size`` =
floor(input / crop_pct) (256 for a 224 input at crop_pct 0.875), resized with the model's
interpolation and center-cropped square (see ``food101.decode_image``). Then

* eval: center crop to the input size + normalise (exactly timm's ``create_transform`` eval pipeline);
* train: a random input-size window + random horizontal flip + normalise, per image, in one gather.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from cnnlab.data.augment import Normalize, random_window


@dataclass(frozen=True)
class Preprocess:
    input_size: int  # side of the square the backbone sees, px
    stored_size: int  # side of the cached square images, px (>= input_size)
    mean: tuple[float, float, float]  # per channel, on [0, 1] pixels
    std: tuple[float, float, float]
    interpolation: str  # resize filter used when decoding: bicubic, bilinear, ...

    @classmethod
    def from_data_config(cls, config: dict) -> "Preprocess":
        """From timm's resolved data config (``input_size`` is (C, H, W); square inputs assumed)."""
        input_size = int(max(config["input_size"][1:]))
        crop_pct = float(config.get("crop_pct") or 1.0)
        return cls(input_size=input_size, stored_size=int(math.floor(input_size / crop_pct)),
                   mean=tuple(float(m) for m in config["mean"]), std=tuple(float(s) for s in config["std"]),
                   interpolation=str(config.get("interpolation") or "bilinear"))

    def key(self) -> tuple:
        """What cached features depend on: any change here means new features."""
        return tuple(sorted(asdict(self).items()))

    def eval_transform(self) -> "EvalTransform":
        return EvalTransform(self)

    def train_transform(self) -> "TrainTransform":
        return TrainTransform(self)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, S, S) -> (B, C, size, size), the middle window (same offsets as torchvision's)."""
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


class EvalTransform:
    """Deterministic: center crop, normalise. uint8 (B, 3, S, S) -> float (B, 3, I, I)."""

    def __init__(self, pre: Preprocess):
        self.size = pre.input_size
        self.normalize = Normalize(pre.mean, pre.std)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        return self.normalize(center_crop(x, self.size))


class TrainTransform:
    """Random window + horizontal flip + normalise. uint8 (B, 3, S, S) -> float (B, 3, I, I)."""

    def __init__(self, pre: Preprocess):
        self.size = pre.input_size
        self.normalize = Normalize(pre.mean, pre.std, flip=True)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        return self.normalize(random_window(x, self.size, g), g)


def preprocess_for(model: torch.nn.Module, input_size: int = 0) -> Preprocess:
    """The model's own preprocessing, from timm's data config (its eval/test input size);
    ``input_size`` > 0 replaces the input side (quick CPU runs), keeping crop fraction, mean and std."""
    import timm

    config = dict(timm.data.resolve_model_data_config(model, use_test_size=True))
    if input_size > 0:
        config["input_size"] = (3, input_size, input_size)
    return Preprocess.from_data_config(config)
