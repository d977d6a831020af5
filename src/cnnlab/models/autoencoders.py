"""Autoencoders for 28x28 grey images, behind one registry: ``create_autoencoder(name, **kw)``.

Every autoencoder maps (B, 1, 28, 28) in [0, 1] to the same shape and exposes ``encoder`` and
``decoder`` (sub-models sharing the parent's weights, like the lab's Keras ``Model`` trio) plus
``encode``/``decode``; ``decoder(encoder(x))`` is exactly ``model(x)``. Each decoder ends in its sigmoid,
so ``decode_logits`` gives what comes before it: binary cross-entropy computed from those logits is the
same loss, stabler, and cheaper on a CPU than from the sigmoid's output (``train.autoencoder``).

- ``dense-ae``: 784 -> code (ReLU, default 32) -> 784 (sigmoid), the lab's shallow autoencoder.
- ``conv-dae``: the lab's convolutional denoising autoencoder (conv/pool down to 128x7x7, conv/upsample
  back to 1x28x28).

Layers start from Xavier (Glorot) uniform weights and zero biases, as in Keras: on notMNIST the dense
autoencoder ends higher in PSNR that way than from PyTorch's default init. The dense code layer's
biases start at 0.1 instead: a ReLU unit that starts (or is pushed) negative on every image never
recovers, and each dead unit is a lost code dimension. ``bench/notmnist.py`` measures the result.

    python -m cnnlab notmnist summary --model conv-dae    # layer table with output shapes
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.registry import Registry

AUTOENCODERS = Registry("autoencoder")
IMAGE_SHAPE = (1, 28, 28)  # (C, H, W)
CODE_BIAS = 0.1  # initial bias of the dense code layer


def xavier_init(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every linear and conv layer (Keras' defaults)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


class Autoencoder(nn.Module):
    """Encoder and decoder chained; the two halves are usable on their own (shared weights)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, code_shape: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.code_shape = code_shape  # one image's code, e.g. (32,) or (128, 7, 7)
        self.input_shape = IMAGE_SHAPE

    @property
    def code_size(self) -> int:
        return int(torch.Size(self.code_shape).numel())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, 1, 28, 28) -> (B, *code_shape)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)  # (B, *code_shape) -> (B, 1, 28, 28)

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        """(B, *code_shape) -> (B, 1, 28, 28) logits: the decoder without its final sigmoid, so that
        ``torch.sigmoid(decode_logits(c))`` equals ``decode(c)``.

        Raises:
            TypeError: the decoder does not end in a sigmoid (see ``has_logits``)."""
        if not self.has_logits:
            raise TypeError(f"{type(self).__name__}: its decoder does not end in nn.Sigmoid, or its forward is "
                            "not encode -> decode: it has no logits")
        for layer in list(self.decoder)[:-1]:
            code = layer(code)
        return code

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, 1, 28, 28) logits: ``forward`` without the decoder's final sigmoid."""
        return self.decode_logits(self.encode(x))

    @property
    def has_logits(self) -> bool:
        """True when ``forward`` is this class's (encode, then decode) and the decoder is a Sequential ending
        in ``nn.Sigmoid`` (every registered autoencoder): then ``sigmoid(decode_logits(encode(x)))`` is
        ``forward(x)``. A subclass with its own ``forward`` has no logits this way."""
        return (type(self).forward is Autoencoder.forward and isinstance(self.decoder, nn.Sequential)
                and isinstance(self.decoder[-1], nn.Sigmoid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.encode(x)
        return self.decode(code)


@AUTOENCODERS.register("dense-ae")
def dense_ae(code_dim: int = 32) -> Autoencoder:
    """784 -> ``code_dim`` (ReLU) -> 784 (sigmoid): one input, one hidden and one output layer."""
    pixels = int(torch.Size(IMAGE_SHAPE).numel())
    encoder = nn.Sequential(
        nn.Flatten(),                       # (B, 1, 28, 28) -> (B, 784)
        nn.Linear(pixels, code_dim),
        nn.ReLU(),
    )
    decoder = nn.Sequential(
        nn.Linear(code_dim, pixels),
        nn.Unflatten(1, IMAGE_SHAPE),       # (B, 784) -> (B, 1, 28, 28)
        nn.Sigmoid(),                       # last, so that decode_logits stops before it
    )
    model = xavier_init(Autoencoder(encoder, decoder, code_shape=(code_dim,)))
    nn.init.constant_(encoder[1].bias, CODE_BIAS)  # keeps ReLU code units alive (see module docstring)
    return model


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)  # 3x3, 'same' padding


@AUTOENCODERS.register("conv-dae")
def conv_dae() -> Autoencoder:
    """The lab's convolutional denoising autoencoder; the code is 128x7x7 = 6272 values (784 in)."""
    encoder = nn.Sequential(
        _conv(1, 32), nn.ReLU(),            # (B, 32, 28, 28)
        nn.MaxPool2d(2),                    # (B, 32, 14, 14)
        _conv(32, 64), nn.ReLU(),           # (B, 64, 14, 14)
        nn.MaxPool2d(2),                    # (B, 64, 7, 7)
        _conv(64, 128), nn.ReLU(),          # (B, 128, 7, 7): the code
    )
    decoder = nn.Sequential(
        _conv(128, 128), nn.ReLU(),         # (B, 128, 7, 7)
        nn.Upsample(scale_factor=2),        # (B, 128, 14, 14), nearest as Keras' UpSampling2D
        _conv(128, 64), nn.ReLU(),          # (B, 64, 14, 14)
        nn.Upsample(scale_factor=2),        # (B, 64, 28, 28)
        _conv(64, 1), nn.Sigmoid(),         # (B, 1, 28, 28)
    )
    return xavier_init(Autoencoder(encoder, decoder, code_shape=(128, 7, 7)))


def create_autoencoder(name: str, **kwargs) -> Autoencoder:
    return AUTOENCODERS.create(name, **kwargs)


def list_autoencoders() -> list[str]:
    return AUTOENCODERS.names()


# ---- describing a model ---------------------------------------------------------------------------


def layer_output_shapes(model: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    """(qualified name, layer class, output shape without the batch) for every leaf layer, in call order."""
    records: list[tuple[str, str, tuple[int, ...]]] = []
    hooks = []
    for name, layer in model.named_modules():
        if len(list(layer.children())) == 0:
            hooks.append(layer.register_forward_hook(
                lambda mod, inp, out, name=name: records.append((name, type(mod).__name__, tuple(out.shape[1:])))))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *IMAGE_SHAPE))
    finally:
        for hook in hooks:
            hook.remove()
    return records


def parameter_bytes(module: nn.Module, bytes_per_value: int = 4) -> int:
    """What shipping ``module``'s weights costs (float32 by default)."""
    return sum(p.numel() for p in module.parameters()) * bytes_per_value


def code_size_line(model: Autoencoder) -> str:
    pixels = int(torch.Size(IMAGE_SHAPE).numel())
    dims = "x".join(map(str, model.code_shape))
    dims = f"{dims} = {model.code_size}" if len(model.code_shape) > 1 else dims
    verdict = "compresses" if model.code_size < pixels else "does NOT compress: the code is larger than the image"
    return (f"code: {dims} values per image vs {pixels} input pixels "
            f"({model.code_size / pixels:.2f}x): {verdict}")


def describe_autoencoder(model: Autoencoder) -> str:
    """torchinfo's layer table (output shapes, parameters) plus a line on the code's size."""
    from cnnlab.models.inspect import summary_text  # torchinfo: only `summary` and run folders need it

    out_shape = "x".join(map(str, layer_output_shapes(model)[-1][2]))
    in_shape = "x".join(map(str, IMAGE_SHAPE))
    return (f"{summary_text(model, IMAGE_SHAPE, depth=3)}\n"
            f"input {in_shape} -> output {out_shape}"
            f" ({'same shape' if in_shape == out_shape else 'DIFFERENT shape'})\n"
            f"{code_size_line(model)}\n"
            f"decoder size: {parameter_bytes(model.decoder):,} bytes as float32")
