"""Classification heads put on top of a backbone's pooled features (B, F) -> logits (B, K).

A head is named by a spec string, parsed here and built through the ``HEADS`` registry:

    linear              one Linear(F, K) (dropout before it if asked)
    mlp:512             Linear(F, 512) -> [BatchNorm] -> activation -> Dropout -> Linear(512, K)
    mlp:1024,256        one hidden layer per number

    create_head("mlp:512", in_features=1280, num_classes=20, activation="relu", dropout=0.2)
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import activation as make_activation
from cnnlab.registry import Registry

HEADS = Registry("head")


@HEADS.register("linear")
def linear_head(in_features: int, num_classes: int, hidden: tuple[int, ...] = (), *, dropout: float = 0.0,
                **_unused) -> nn.Module:
    """Activation and batch norm do not apply to a single linear layer, hence ``**_unused``."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))


@HEADS.register("mlp")
def mlp_head(in_features: int, num_classes: int, hidden: tuple[int, ...] = (512,), *, activation: str = "relu",
             dropout: float = 0.0, batch_norm: bool = False) -> nn.Module:
    layers: list[nn.Module] = []
    width = in_features
    for units in hidden:
        layers.append(nn.Linear(width, units, bias=not batch_norm))  # BN's shift makes the bias redundant
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers += [make_activation(activation), nn.Dropout(dropout)]
        width = units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def parse_head(spec: str) -> tuple[str, tuple[int, ...]]:
    """'mlp:1024,256' -> ('mlp', (1024, 256)); 'linear' -> ('linear', ())."""
    name, _, args = spec.partition(":")
    try:
        hidden = tuple(int(v) for v in args.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"head {spec!r}: hidden sizes must be integers, as in mlp:512 or mlp:1024,256") from None
    if any(h < 1 for h in hidden):
        raise ConfigError(f"head {spec!r}: hidden sizes must be positive")
    if name == "mlp" and not hidden:
        raise ConfigError(f"head {spec!r}: give the hidden sizes, as in mlp:512 or mlp:1024,256")
    if name != "mlp" and hidden:
        raise ConfigError(f"head {spec!r}: only mlp takes hidden sizes")
    HEADS.get(name)  # an unknown name fails here, with the known ones listed
    return name, hidden


def create_head(spec: str, in_features: int, num_classes: int, *, activation: str = "relu",
                dropout: float = 0.0, batch_norm: bool = False) -> nn.Module:
    name, hidden = parse_head(spec)
    return HEADS.create(name, in_features, num_classes, hidden, activation=activation, dropout=dropout,
                        batch_norm=batch_norm)
