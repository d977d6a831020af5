from dataclasses import dataclass
from typing import Literal

import pytest

from cnnlab import config as cfgmod
from cnnlab.config import field
from cnnlab.errors import ConfigError
from cnnlab.experiments.cifar import CifarConfig


@dataclass
class Example:
    epochs: int = field(3, "epochs")
    lr: float = field(0.1, "learning rate")
    widths: list[int] = field([8, 16], "widths")
    mode: Literal["a", "b"] = field("a", "mode")
    flag: bool = field(False, "flag")


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\nlr: 1\nwidths: [1, 2, 3]\n")
    cfg = cfgmod.load(Example, path, {"lr": "0.5", "flag": "yes"})
    assert (cfg.epochs, cfg.lr, cfg.widths, cfg.flag) == (5, 0.5, [1, 2, 3], True)
    assert isinstance(cfg.lr, float)


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epoch: 5\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'epoch'.*did you mean 'epochs'"):
        cfgmod.load(Example, path)


@pytest.mark.parametrize("key,value,msg", [
    ("epochs", "three", "epochs: expected an integer"),
    ("epochs", 2.5, "epochs: expected an integer"),
    ("lr", "fast", "lr: expected a number"),
    ("widths", [1, "x"], r"widths\[1\]: expected an integer"),
    ("mode", "c", "mode: 'c' is not one of"),
    ("flag", "maybe", "flag: expected true or false"),
])
def test_wrong_types_are_named(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        cfgmod.from_dict(Example, {key: value})


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfgmod.load(Example, bad)
    with pytest.raises(ConfigError, match="not found"):
        cfgmod.load(Example, tmp_path / "nope.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = CifarConfig(arch="multipath", epochs=2, model={"stem": 16})
    cfgmod.save(cfg, tmp_path / "config.yaml")
    assert cfgmod.load(CifarConfig, tmp_path / "config.yaml") == cfg


def test_unknown_architecture_in_config():
    with pytest.raises(ConfigError, match="did you mean 'residual'"):
        CifarConfig(arch="residul")
