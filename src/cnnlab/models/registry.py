"""The architecture registry: ``create_model(name, **overrides)``, ``list_models()``.

Each entry is a builder ``fn(config, num_classes) -> nn.Module`` plus its config class; overrides are
checked against that class, so a typo in a model option is an error naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from cnnlab.config import build
from cnnlab.errors import ConfigError
from cnnlab.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[Any, int], nn.Module]
    config_class: type


MODELS = Registry("architecture")


def register_model(name: str, config_class: type):
    def add(build):
        MODELS.register(name)(ModelEntry(build, config_class))
        return build

    return add


def model_config(name: str, **overrides: Any) -> Any:
    entry: ModelEntry = MODELS.get(name)
    try:
        return build(entry.config_class, overrides)
    except ConfigError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


def create_model(name: str, num_classes: int = 10, **overrides: Any) -> nn.Module:
    entry: ModelEntry = MODELS.get(name)
    return entry.build(model_config(name, **overrides), num_classes)


def list_models() -> list[str]:
    return MODELS.names()


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
