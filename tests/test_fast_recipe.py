"""The pieces of the time-to-accuracy recipe: patch whitening, the airbench-style stage, lookahead
averaging and the separate learning rate of biases and norm parameters."""

import json

import pytest
import torch
from torch import nn

from cnnlab.config import build
from cnnlab.experiments import cifar
from cnnlab.experiments.cifar import CifarConfig
from cnnlab.models import create_model
from cnnlab.models.layers import FastStage, PatchWhitening, init_from_data
from cnnlab.train.classifier import make_optimizer
from cnnlab.train.options import ClassifierOptim
from cnnlab.train.checkpoint import load_model_weights
from cnnlab.train.lookahead import Lookahead


def correlated_images(n=200, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = nn.functional.avg_pool2d(torch.randn(n, 1, 36, 36, generator=g), 5, stride=1)  # (n, 1, 32, 32)
    noise = torch.randn(n, 3, 32, 32, generator=g) * 0.2
    return torch.cat([smooth, 0.5 * smooth, -smooth], 1) + noise  # strongly correlated channels and pixels


def test_patch_whitening_decorrelates_patches_and_freezes_its_filters():
    images = correlated_images()
    stem = PatchWhitening(3, eps=1e-9)  # (the default eps damps only near-zero-variance directions)
    stem.fit(images)
    assert stem.out_channels == 24 and not stem.weight.requires_grad and stem.bias.requires_grad
    with torch.no_grad():
        out = nn.functional.conv2d(images, stem.weight[:12])  # the 12 positive filters, no bias
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = flat.T @ flat / len(flat)
    assert torch.allclose(torch.diagonal(covariance), torch.ones(12, dtype=torch.double), atol=0.02)
    off = covariance - torch.diag(torch.diagonal(covariance))
    assert off.abs().max() < 0.05
    assert torch.equal(stem.weight[12:], -stem.weight[:12])


def test_fast_stage_starts_as_identity_on_its_first_channels_and_keeps_bn_scales_fixed():
    stage = FastStage(4, 8, bn_scale=False)
    centre = stage.conv.weight[:4, :, 1, 1]
    assert torch.equal(centre, torch.eye(4)) and stage.conv.weight[:4].abs().sum() == 4
    norms = [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(not n.weight.requires_grad and n.bias.requires_grad for n in norms)
    assert all(n.weight.requires_grad for n in FastStage(4, 8, bn_scale=True).modules() if isinstance(n, nn.BatchNorm2d))


def test_init_from_data_fits_every_whitening_stem_and_only_those():
    model = create_model("residual_fast", widths=[8, 16, 16])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_from_data(model, correlated_images(50))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"features.0.weight"}
    plain = create_model("residual_fast", widths=[8, 16, 16], whiten=False)
    init_from_data(plain, correlated_images(50))
    assert plain.features[0].weight.requires_grad


def test_lookahead_pulls_every_k_steps_and_hands_over_the_slow_weights_at_the_end():
    model = nn.Linear(1, 1, bias=False)
    lookahead = Lookahead(every=2, base=0.5, power=0.0)  # constant decay 0.5
    model.weight.data.fill_(0.0)
    lookahead.step(model, 1, 4)           # first call records the slow copy (0); step 1 is not a pull
    model.weight.data.fill_(2.0)
    lookahead.step(model, 2, 4)           # pull: slow = 0.5 * 0 + 0.5 * 2 = 1, fast restarts from it
    assert model.weight.item() == pytest.approx(1.0)
    model.weight.data.fill_(3.0)
    lookahead.step(model, 3, 4)           # not a pull
    assert model.weight.item() == pytest.approx(3.0)
    model.weight.data.fill_(5.0)
    lookahead.step(model, 4, 4)           # last step: the fast weights take the slow copy unchanged
    assert model.weight.item() == pytest.approx(1.0)
    assert Lookahead().decay(0, 100) == 0.0 and Lookahead().decay(100, 100) == pytest.approx(0.95 ** 5)


def test_norm_parameters_get_their_own_learning_rate_and_no_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    optimizer = make_optimizer(model, ClassifierOptim(lr=0.5, weight_decay=1e-3, norm_lr_scale=64))
    kernels, norms, biases = optimizer.param_groups
    assert kernels["lr"] == 0.5 and kernels["weight_decay"] == 1e-3 and kernels["params"] == [model[0].weight]
    assert norms["lr"] == 32.0 and norms["weight_decay"] == 0.0 and norms["params"] == [model[1].weight, model[1].bias]
    # a conv's bias (a whitening stem's) is no norm parameter: plain lr, no decay
    assert biases["lr"] == 0.5 and biases["weight_decay"] == 0.0 and biases["params"] == [model[0].bias]
    assert len(make_optimizer(nn.Linear(2, 2, bias=False), ClassifierOptim()).param_groups) == 1  # no empty groups


def test_whitening_bias_trains_for_its_epochs_then_freezes():
    stem = PatchWhitening(3, bias_epochs=3)
    stem.fit(correlated_images(20))
    for epoch, trains in [(0, True), (2, True), (3, False), (7, False)]:
        stem.start_epoch(epoch)
        assert stem.bias.requires_grad is trains and not stem.weight.requires_grad
    always = PatchWhitening(3, bias_epochs=0)
    always.start_epoch(50)
    assert always.bias.requires_grad


def test_reflect_padded_crops_show_only_the_images_own_pixels():
    from cnnlab.data.augment import random_crop
    x = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4).repeat(64, 3, 1, 1)
    g = torch.Generator().manual_seed(0)
    zeros, reflect = random_crop(x, 2, g), random_crop(x, 2, torch.Generator().manual_seed(0), "reflect")
    assert (zeros == 0).any() and not (reflect == 0).any()  # same windows, borders filled differently
    assert set(reflect.unique().tolist()) <= set(range(1, 17)) and reflect.shape == x.shape
    with pytest.raises(ValueError, match="reflect"):
        random_crop(x, 2, g, "mirror")


def test_alternating_flips_mirror_each_image_on_every_other_epoch():
    from cnnlab.data.loader import TensorLoader
    n = 200
    x = torch.zeros(n, 1, 1, 2, dtype=torch.uint8)
    x[:, 0, 0, 0] = 1  # unmirrored: [1, 0]; mirrored: [0, 1]
    y = torch.arange(n)
    loader = TensorLoader(x, y, 50, shuffle=True, seed=3, alternating_flips=True)

    def mirrored():  # (n,) bool, by image index, for one epoch
        out = torch.zeros(n, dtype=torch.bool)
        for xb, yb in loader:
            out[yb] = xb[:, 0, 0, 1] == 1
        return out

    epochs = [mirrored() for _ in range(4)]
    assert 0.3 < epochs[0].float().mean() < 0.7  # a random half first
    assert torch.equal(epochs[1], ~epochs[0]) and torch.equal(epochs[2], epochs[0]) and torch.equal(epochs[3], ~epochs[0])
    plain = TensorLoader(x, y, 50, shuffle=True, seed=3)
    assert not any((xb[:, 0, 0, 1] == 1).any() for xb, _ in plain)  # off by default: the loader flips nothing


def test_fast_recipe_trains_end_to_end_and_its_checkpoint_keeps_the_fitted_stem(cifar_tree):
    cfg = build(CifarConfig, arch="residual_fast", model={"widths": [8, 16, 16]}, data_dir=str(cifar_tree), epochs=2,
                      batch_size=16, lr=0.5, momentum=0.85, norm_lr_scale=16, lookahead=True, crop_padding=2,
                      label_smoothing=0.2, flip_tta=True, shift_tta=True, crop_fill="reflect", alternating_flips=True,
                      progress=False, logger="none")
    run_dir = cifar.train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 <= summary["test_acc"] <= 1 and summary["epochs"] == 2
    assert set(summary["score_s"]) >= {"train"} and all(t > 0 for t in summary["score_s"].values())
    model = load_model_weights(cifar.build_model(cfg.arch, cfg.model), run_dir / "checkpoints" / "last.ckpt")
    fitted = cifar.build_model(cfg.arch, cfg.model)
    cifar.fit_to_data(fitted, cfg, cifar.make_splits(cfg.data, cfg.run.seed)[0].train)
    assert torch.allclose(model.features[0].weight, fitted.features[0].weight)  # frozen through training


def test_decay_norms_decays_shifts_and_biases_by_the_weights_amount_per_step():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    kernels, norms, biases = make_optimizer(model, ClassifierOptim(lr=0.5, weight_decay=1e-3, norm_lr_scale=64,
                                                                   decay_norms=True)).param_groups
    per_step = [g["lr"] * g["weight_decay"] for g in (kernels, norms, biases)]
    assert per_step == pytest.approx([5e-4] * 3) and norms["lr"] == 32.0


def test_onecycle_runs_from_warmup_from_to_one_to_final_lr():
    from cnnlab.train.classifier import lr_factor
    default = ClassifierOptim(warmup=0.25)
    assert [lr_factor(s, 100, default) for s in (0, 25, 100, 150)] == pytest.approx([0.04, 1.0, 0.0, 0.0])
    airbench = ClassifierOptim(warmup=0.25, warmup_from=0.2, final_lr=0.07)
    assert [lr_factor(s, 100, airbench) for s in (0, 25, 100, 150)] == pytest.approx([0.2, 1.0, 0.07, 0.07])
    assert lr_factor(50, 100, airbench) == pytest.approx(0.07 + 0.93 * 50 / 75)


def test_fast_stage_without_shortcut_is_airbench94s_plain_stage():
    x = torch.randn(2, 4, 8, 8)
    plain, residual = FastStage(4, 8, shortcut=False).eval(), FastStage(4, 8).eval()
    residual.load_state_dict(plain.state_dict())
    with torch.no_grad():
        h = plain.act(plain.norm(plain.pool(plain.conv(x))))
        assert torch.allclose(plain(x), plain.residual(h)) and torch.allclose(residual(x), h + plain.residual(h))
    assert "identity" not in plain.describe(lambda m: type(m).__name__) and "identity" in residual.describe(lambda m: type(m).__name__)


def test_shift_tta_averages_airbenchs_six_views_and_needs_flips_and_a_val_monitor():
    from cnnlab.errors import ConfigError
    from cnnlab.train.classifier import predict_logits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5)).eval()  # not translation-invariant
    x, y = torch.randn(6, 3, 8, 8), torch.arange(6) % 5
    with torch.no_grad():
        model(x)
        flips = lambda v: (model(v) + model(v.flip(3))) / 2  # noqa: E731
        padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        expected = (flips(x) + (flips(padded[..., :8, :8]) + flips(padded[..., 2:, 2:])) / 2) / 2
    six, _ = predict_logits(model, [(x, y)], flip_tta=True, shift_tta=True)
    two, _ = predict_logits(model, [(x, y)], flip_tta=True)
    assert torch.allclose(six, expected, atol=1e-5) and torch.allclose(two, flips(x), atol=1e-5)
    assert not torch.allclose(six, two, atol=1e-3)  # the shifted views count
    assert torch.allclose(predict_logits(model, [(x, y)], shift_tta=True)[0], model(x).detach(), atol=1e-5)  # no flips: 1 view
    build(CifarConfig, flip_tta=True, shift_tta=True, monitor="val")
    for bad in ({"flip_tta": False, "monitor": "val"}, {"flip_tta": True, "monitor": "test"}):
        with pytest.raises(ConfigError, match="shift_tta"):
            build(CifarConfig, shift_tta=True, **bad)


def test_evaluation_batch_is_small_on_a_cpu_large_on_a_gpu_and_a_set_value_is_kept(monkeypatch):
    cfg = build(CifarConfig)
    assert cifar.eval_batch_size(cfg, on_gpu=False) == 128 and cifar.eval_batch_size(cfg, on_gpu=True) == 1024
    monkeypatch.setattr(cifar, "uses_cuda", lambda accelerator="auto": True)
    assert cifar.eval_batch_size(cfg) == 1024  # default: where the run trains
    assert cifar.eval_batch_size(build(CifarConfig, eval_batch_size=500)) == 500
