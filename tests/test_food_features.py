"""The frozen-feature cache: reused when nothing changed; rebuilt when the backbone, its weights or the
preprocessing change; and the head trained from it matches one trained through the backbone's features."""

from __future__ import annotations

import pytest
import torch
from food_tree import make_food_tree

from cnnlab.config import build
from cnnlab.train import features as features_module
from cnnlab.data import food101
from cnnlab.experiments.food import FoodConfig, build_net, features_of
from cnnlab.models.backbones import BACKBONES, BackboneEntry
from cnnlab.data.preprocess import preprocess_for

# A second offline backbone (random weights, fixed by the seed) so a backbone change can be tested offline.
if "test-resnet10t" not in BACKBONES:
    BACKBONES.register("test-resnet10t")(BackboneEntry("test-resnet10t", "resnet10t", "random (tests)",
                                                       load_offline=lambda model: None))


@pytest.fixture
def extractions(monkeypatch):
    """Counts backbone passes over a split."""
    calls = []
    real = features_module.extract_features

    def counting(net, images, pre, **kwargs):
        calls.append(len(images) if kwargs.get("rows") is None else len(kwargs["rows"]))
        return real(net, images, pre, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    return calls


def _features(food, **overrides):
    settings = {"data_dir": str(food), "num_classes": 2, "input_size": 32, "precision": "32-true", **overrides}
    cfg = build(FoodConfig, **settings)
    torch.manual_seed(0)  # test-resnet10t's random weights are the same every time
    net = build_net(cfg, cfg.data.num_classes)
    pre = preprocess_for(net.backbone, cfg.data.input_size)
    data = food101.load(food, num_classes=2, image_size=pre.stored_size, interpolation=pre.interpolation)
    return net, features_of(net, data, pre, cfg)


def test_cache_reused_when_nothing_changed(tmp_path, extractions):
    food = make_food_tree(tmp_path / "src")
    _, first = _features(food)
    assert len(extractions) == 2 and first.info["built"]  # train and test
    _, again = _features(food, head="mlp:8", lr=0.5)  # the head and its training do not matter
    assert len(extractions) == 2 and not again.info["built"]
    assert torch.equal(first.splits["train"].x, again.splits["train"].x)
    assert first.splits["train"].x.shape == (8, 1280)


@pytest.mark.parametrize("change", [{"backbone": "test-resnet10t"}, {"input_size": 48}, "weights", "timm"])
def test_cache_rebuilt_when_backbone_weights_or_transform_change(tmp_path, extractions, change, monkeypatch):
    food = make_food_tree(tmp_path / "src")
    _features(food)
    assert len(extractions) == 2
    if change == "weights":
        from cnnlab.models import backbones

        real = backbones.load_lite0_package_weights

        def nudged(model):
            real(model)
            with torch.no_grad():
                model.conv_stem.weight.add_(1e-3)

        monkeypatch.setitem(BACKBONES._entries, "efficientnet_lite0",
                            BackboneEntry("efficientnet_lite0", "tf_efficientnet_lite0", "nudged", nudged))
        _features(food)
    elif change == "timm":  # another timm release may compute other features from the same weights
        import timm

        monkeypatch.setattr(timm, "__version__", timm.__version__ + ".post1")
        _features(food)
    else:
        _features(food, **change)
    assert len(extractions) == 4


def test_features_equal_the_backbone_on_eval_preprocessed_images(tmp_path):
    food = make_food_tree(tmp_path / "src")
    net, inputs = _features(food)
    images = inputs.splits["test"].x
    pre = preprocess_for(net.backbone, 32)
    data = food101.load(food, num_classes=2, image_size=pre.stored_size)
    with torch.no_grad():
        direct = net.eval().forward_features(pre.eval_transform()(data.test.x))
    assert torch.allclose(images, direct, atol=1e-5)


def test_cached_features_are_served_without_reading_the_images(tmp_path, extractions):
    food = make_food_tree(tmp_path / "src")
    _features(food)  # extracted: the images were read
    cfg = build(FoodConfig, data_dir=str(food), num_classes=2, input_size=32, precision="32-true")
    torch.manual_seed(0)
    net = build_net(cfg, 2)
    pre = preprocess_for(net.backbone, 32)
    data = food101.load(food, num_classes=2, image_size=pre.stored_size, interpolation=pre.interpolation)
    inputs = features_of(net, data, pre, cfg)
    assert len(extractions) == 2 and not inputs.info["built"]
    assert not data.train.is_read and not data.test.is_read  # a frozen run from the cache holds no images


def test_evaluation_batch_is_small_for_images_on_a_cpu_and_a_set_value_is_kept(monkeypatch):
    from cnnlab.experiments import food as food_module
    from cnnlab.train import transfer

    cfg = build(FoodConfig)
    monkeypatch.setattr(transfer, "uses_cuda", lambda accelerator="auto": False)
    assert food_module.eval_batch_size(cfg) == 16 and food_module.eval_batch_size(cfg, on_features=True) == 1024
    monkeypatch.setattr(transfer, "uses_cuda", lambda accelerator="auto": True)
    assert food_module.eval_batch_size(cfg) == 256
    assert food_module.phase(cfg).eval_batch_size == 256 and food_module.phase(cfg, True).eval_batch_size == 1024
    assert food_module.eval_batch_size(build(FoodConfig, eval_batch_size=40), on_features=True) == 40
