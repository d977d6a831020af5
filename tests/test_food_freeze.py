"""Freezing: a frozen backbone keeps every weight and BatchNorm statistic, even when trained through;
finetune's second phase changes only the unfrozen blocks."""

from __future__ import annotations

import pytest
import torch
from food_tree import make_food_tree
from torch.nn.modules.batchnorm import _BatchNorm

from cnnlab.config import build
from cnnlab.errors import ConfigError
from cnnlab.experiments.food import FoodConfig, build_net, train
from cnnlab.models.backbones import create_backbone
from cnnlab.train.freeze import block_groups, count_trainable, freeze, is_pinned, unfreeze, unfreeze_last

TINY = dict(num_classes=3, input_size=32, batch_size=4, eval_batch_size=8, epochs=1, progress=False, logger="none",
            precision="32-true", eval_train=False)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _checkpoint_weights(path, prefix: str) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_freeze_pins_batchnorm_in_eval_mode_through_parent_train():
    backbone = create_backbone("efficientnet_lite0")
    net = torch.nn.Sequential(backbone, torch.nn.Linear(1280, 2))
    freeze(backbone)
    before = _state(backbone)
    net.train()  # what Lightning does at the start of every epoch
    bns = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert not any(p.requires_grad for p in backbone.parameters())
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        features = backbone.forward_head(backbone.forward_features(torch.randn(4, 3, 32, 32)), pre_logits=True)
        net[1](features).sum().backward()
        optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    unfreeze(backbone)
    net.train()
    assert all(m.training for m in bns) and all(p.requires_grad for p in backbone.parameters())


def test_unfreeze_last_k_blocks():
    backbone = create_backbone("efficientnet_lite0")
    groups = block_groups(backbone)
    assert len(groups) == 8 and groups[0][0] == "conv_stem.weight"  # stem + 7 stages (conv_head with the last)
    trainable = unfreeze_last(backbone, 2)
    assert set(trainable) == set(groups[-2] + groups[-1])
    assert {n for n, p in backbone.named_parameters() if p.requires_grad} == set(trainable)
    backbone.train()
    for name, m in backbone.named_modules():
        if isinstance(m, _BatchNorm):
            unfrozen = f"{name}.weight" in trainable
            assert m.training == unfrozen and is_pinned(m) != unfrozen, name
    assert count_trainable(backbone) == sum(p.numel() for n, p in backbone.named_parameters() if n in trainable)
    unfreeze_last(backbone, 2, train_bn=False)  # the keras recipe: unfrozen BNs keep their statistics too
    backbone.train()
    assert not any(m.training for m in backbone.modules() if isinstance(m, _BatchNorm))
    assert {n for n, p in backbone.named_parameters() if p.requires_grad} == set(trainable)
    unfreeze_last(backbone, "all")
    assert all(p.requires_grad for p in backbone.parameters())
    with pytest.raises(ConfigError, match="8 blocks"):
        unfreeze_last(backbone, 9)


def test_frozen_run_through_the_backbone_leaves_backbone_untouched(tmp_path):
    """--no-cache: batches go through the frozen backbone in train mode; nothing in it may move."""
    food = make_food_tree(tmp_path / "src")
    cfg = build(FoodConfig, strategy="frozen", cache=False, head="mlp:8", data_dir=str(food), **TINY)
    pretrained = _state(build_net(cfg, cfg.data.num_classes).backbone)
    run_dir = train(cfg)
    for ckpt in ("best.ckpt", "last.ckpt"):
        trained = _checkpoint_weights(run_dir / "checkpoints" / ckpt, "model.backbone.")
        assert trained.keys() == pretrained.keys()
        changed = [k for k in pretrained if not torch.equal(pretrained[k], trained[k])]
        assert not changed, changed[:5]  # weights, running means/vars, num_batches_tracked


def test_finetune_phase_two_changes_only_unfrozen_blocks(tmp_path):
    food = make_food_tree(tmp_path / "src")
    cfg = build(FoodConfig, strategy="finetune", unfreeze="1", head_epochs=1, lr=1e-2, finetune_lr=1e-2,
                     data_dir=str(food), **TINY)
    pretrained = build_net(cfg, cfg.data.num_classes).backbone
    after_head = _state(pretrained)  # phase 1 trains the head from cached features: backbone untouched
    run_dir = train(cfg)
    phase1 = torch.load(run_dir / "phase1" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(k.startswith("model.head.") for k in phase1)  # head-only checkpoints from cached features
    after_body = _checkpoint_weights(run_dir / "checkpoints" / "last.ckpt", "model.backbone.")
    last_block = set(block_groups(pretrained)[-1])  # parameter names of the unfrozen block
    changed = {k for k in after_head if not torch.equal(after_head[k], after_body[k])}
    assert changed, "phase 2 trained nothing"
    in_last_block = {k for k in changed if k in last_block or k.rsplit(".", 1)[0] + ".weight" in last_block}
    assert changed == in_last_block, sorted(changed - in_last_block)[:5]  # incl. frozen BN statistics
    head_before = _checkpoint_weights(run_dir / "phase1" / "checkpoints" / "last.ckpt", "model.head.")
    head_after = _checkpoint_weights(run_dir / "checkpoints" / "last.ckpt", "model.head.")
    assert any(not torch.equal(head_before[k], head_after[k]) for k in head_before)
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("phase,epoch") and len(metrics) == 3  # header + one epoch per phase
