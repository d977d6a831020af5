from dataclasses import dataclass
from typing import Literal

import pytest

from cnnlab import config as cfgmod
from cnnlab.config import field
from cnnlab.errors import ConfigError
import yaml

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
    ("widths", [1, "x"], r"widths: expected an integer, got 'x'"),
    ("mode", "c", "mode: 'c' is not one of"),
    ("flag", "maybe", "flag: expected true or false"),
])
def test_wrong_types_are_named(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        cfgmod.build(Example, {key: value})


@dataclass
class WithOptional:
    note: str | None = field(None, "a key that may be left empty")
    lr: float = field(0.1, "learning rate")
    pick: Literal["a", None] = field("a", "a choice of which one is none")


@pytest.mark.parametrize("key", ["epochs", "lr", "widths", "mode", "flag"])
def test_null_is_refused_where_the_type_has_no_none(tmp_path, key):
    path = tmp_path / "c.yaml"
    path.write_text(f"{key}:\n")  # YAML's empty value is null: a value deleted by mistake
    with pytest.raises(ConfigError, match=rf"c\.yaml: {key}: a value is needed \(got null"):
        cfgmod.load(Example, path)
    with pytest.raises(ConfigError, match=rf"^{key}: a value is needed"):
        cfgmod.build(Example, {key: None})


def test_null_stays_allowed_where_the_type_takes_none():
    assert cfgmod.build(WithOptional, {"note": None}).note is None
    assert cfgmod.build(WithOptional, {"note": "x"}).note == "x"
    assert cfgmod.build(WithOptional, {"pick": None}).pick is None
    with pytest.raises(ConfigError, match="lr: a value is needed"):
        cfgmod.build(WithOptional, {"lr": None})


def test_null_for_a_nested_key_names_the_key():
    with pytest.raises(ConfigError, match=r"data\.monitor: a value is needed"):
        cfgmod.build(CifarConfig, {"monitor": None})


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfgmod.load(Example, bad)
    with pytest.raises(ConfigError, match="not found"):
        cfgmod.load(Example, tmp_path / "nope.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = cfgmod.build(CifarConfig, arch="multipath", epochs=2, model={"stem": 16})
    cfgmod.save(cfg, tmp_path / "config.yaml")
    assert cfgmod.load(CifarConfig, tmp_path / "config.yaml") == cfg


def test_flat_keys_of_earlier_versions_still_read(tmp_path):
    """config.yaml files written before configs were composed (flat keys) are read as the same config."""
    path = tmp_path / "config.yaml"
    path.write_text("arch: multipath\nepochs: 2\nlimit_train: 100\nlr: 0.05\nname: old\nmodel: {stem: 16}\n")
    cfg = cfgmod.load(CifarConfig, path)
    assert (cfg.arch, cfg.optim.epochs, cfg.data.limit_train, cfg.optim.lr, cfg.run.name) == ("multipath", 2, 100, 0.05, "old")


def test_run_folders_of_earlier_versions_are_read(tmp_path):
    """Flat keys, Lightning's strategy under its old name, and keys that mean nothing now (retired)."""
    from cnnlab.experiments.configs import FoodConfig, SvmConfig

    old_cifar = {"arch": "residual", "epochs": 2, "strategy": "auto", "precision": "auto", "devices": "auto",
                 "flip_tta": False, "limit_test": 100, "name": "residual-s0", "model": {}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(old_cifar))
    assert cfgmod.load(CifarConfig, tmp_path / "c.yaml").hardware.strategy == "auto"
    (tmp_path / "f.yaml").write_text(yaml.safe_dump({"strategy": "finetune", "lightning_strategy": "ddp",
                                                     "flip_tta": False, "finetune_lr": 1e-4}))
    food = cfgmod.load(FoodConfig, tmp_path / "f.yaml")
    assert (food.strategy, food.hardware.strategy, food.finetune.lr) == ("finetune", "ddp", 1e-4)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"features": ["raw"], "epochs": 50, "lr": 1e-3, "name": "svm"}))
    assert cfgmod.load(SvmConfig, tmp_path / "s.yaml").features == ["raw"]
    with pytest.raises(ConfigError, match="unknown option --epochs"):
        from cnnlab.cli import COMMANDS, parse

        parse(next(c for c in COMMANDS if c.words == ("notmnist", "svm")), ["--epochs", "5"])  # retired: not a flag


def test_a_shorthand_shared_by_two_parts_must_be_spelled_out():
    from cnnlab.experiments.configs import FoodConfig

    assert cfgmod.canonical(FoodConfig, "finetune-lr") == "finetune.lr"  # a name of earlier versions
    assert cfgmod.canonical(FoodConfig, "strategy") == "strategy"  # the transfer strategy, never Lightning's
    with pytest.raises(ConfigError, match="unknown config key 'bn_statz'"):
        cfgmod.canonical(FoodConfig, "bn_statz")


def test_unknown_architecture_in_config():
    from cnnlab.experiments.cifar import check_arch

    with pytest.raises(ConfigError, match="did you mean 'residual'"):
        check_arch("residul")
