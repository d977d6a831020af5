"""Exercise 2: transfer learning on Food-101 (first N classes): backbones, heads and strategies.

    cnnlab food backbones                                    # registered backbones: params, input, weights
    cnnlab food train --backbone efficientnet_lite0 --head mlp:512 --strategy frozen --num-classes 10 \\
        --data-dir ../shared/data/food-101-first10.tar       # one run -> runs/food/<name>/
    cnnlab food train --backbone resnet50 --head linear --strategy finetune --unfreeze 2
    cnnlab food compare --config configs/food/compare-quick.yaml   # runs/food/compare.{md,csv,tex}

From Python: ``train(FoodConfig(strategy="frozen", num_classes=10, data_dir=...))`` returns the run folder.
Each run folder holds config.yaml, metrics.csv, checkpoints/{best,last}.ckpt (the whole classifier, or the
head alone when it trained from cached features), confusion.png (best checkpoint, test split) and
summary.json (train, test, top-5 and per-class accuracy; see ``train``).
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import timm
import torch

from cnnlab import config as cfgmod
from cnnlab import files
from cnnlab.config import field
from cnnlab.data.food101 import DEFAULT_NUM_CLASSES, FoodData, load_food101
from cnnlab.data.preprocess import Preprocess, preprocess_for
from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.experiments.common import (add_config_file_flag, command_group, diverged_runs_recorded, open_run,
                                       parse_key_values,
                                       read_compare_config, resolve_config, run_or_reuse)
from cnnlab.models.backbones import BACKBONES, DEFAULT_BACKBONE, resolve_backbone
from cnnlab.models.heads import parse_head
from cnnlab.models.transfer import TransferNet, create_transfer_net
from cnnlab.paths import runs_root
from cnnlab.viz.classification import classification_scores, plot_confusion
from cnnlab.viz.tables import to_markdown, write_table
from cnnlab.train.classifier import ClassifierTrainConfig, accuracy, predict_logits
from cnnlab.train.engine import load_model_weights, resolve_precision
from cnnlab.runs import environment, is_diverged, read_summary, write_summary
from cnnlab.train.transfer import STRATEGIES, Outcome, eval_split, run_device

EXERCISE = "food"


@dataclass
class FoodConfig(ClassifierTrainConfig):
    """One Food-101 run: engine and optimiser settings, then backbone, head, strategy and data."""

    # Defaults that suit transfer learning (re-declared from ClassifierTrainConfig).
    epochs: int = field(20, "training epochs (finetune: of phase 2, after head_epochs)")
    batch_size: int = field(64, "images (or cached feature vectors) per batch, per device")
    optimizer: Literal["sgd", "adamw"] = field("adamw", "sgd (momentum, Nesterov) or adamw")
    lr: float = field(1e-3, "peak learning rate (finetune: of phase 1, the head)")
    weight_decay: float = field(1e-4, "weight decay on conv/linear weights (not on biases or norms)")
    schedule: Literal["onecycle", "cosine", "constant"] = field("cosine", "learning-rate schedule, stepped per batch")
    # What to train.
    backbone: str = field(DEFAULT_BACKBONE, "registered backbone (`cnnlab food backbones`) or any timm model name")
    head: str = field("linear", "linear, or mlp:H1[,H2...] (hidden sizes)")
    # Re-declared: in this exercise --strategy is the transfer strategy (as the lab words it); the
    # Lightning strategy of EngineConfig moves to --lightning-strategy (see train.transfer.engine_config).
    strategy: Literal["frozen", "finetune", "scratch"] = field("frozen", "frozen backbone, two-phase finetune, or scratch (random init)")
    lightning_strategy: str = field("auto", "Lightning strategy: auto, ddp, ddp_spawn, ...")
    activation: str = field("relu", "MLP head activation: relu, gelu, silu, tanh")
    dropout: float = field(0.2, "head dropout: on the features (linear), after each hidden layer (mlp)")
    head_batch_norm: bool = field(False, "BatchNorm after each hidden layer of an MLP head")
    cache: bool = field(True, "frozen (and finetune phase 1): train the head from cached backbone features; "
                              "--no-cache trains through the backbone with augmentation")
    unfreeze: str = field("2", "finetune: blocks unfrozen at the end of the backbone in phase 2, a count or all")
    head_epochs: int = field(10, "finetune: epochs of phase 1 (the head on the frozen backbone)")
    finetune_lr: float = field(1e-4, "finetune: learning rate of phase 2, lower so pretrained weights move gently")
    finetune_bn_stats: bool = field(False, "finetune: BatchNorms of unfrozen blocks use and update batch statistics "
                                           "(default: every BatchNorm keeps its ImageNet statistics, as in keras.io)")
    # Data.
    data_dir: str = field("", "Food-101: a folder holding food-101/, or a .tar/.tar.gz of it (default: look "
                              "under the data root, else download about 5 GB)")
    data_root: str = field("", "folder in which datasets are looked up (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    num_classes: int = field(DEFAULT_NUM_CLASSES, "the first N classes of meta/classes.txt")
    per_class_limit: int = field(0, "at most this many images per class in each split (0: all), for quick runs")
    val_fraction: float = field(0.0, "class-balanced fraction of train held out as val, which then picks "
                                     "best.ckpt (0: the test split does, as the lab asks)")
    input_size: int = field(0, "side of the square the backbone sees, px (0: the backbone's own, from timm)")
    eval_batch_size: int = field(128, "images per batch when evaluating or extracting features")
    eval_train: bool = field(True, "re-evaluate the best checkpoint on the whole train split (off: report the "
                                   "train accuracy logged during its epoch)")

    def __post_init__(self) -> None:
        parse_head(self.head)  # a bad head spec fails before any data is read
        resolve_backbone(self.backbone)
        if self.unfreeze != "all" and not self.unfreeze.isdigit():
            raise ConfigError(f"unfreeze: expected a number of blocks or 'all', got {self.unfreeze!r}")
        if not self.name:
            head = self.head.replace(":", "").replace(",", "-")
            suffix = f"-u{self.unfreeze}" if self.strategy == "finetune" else ""
            self.name = f"{self.backbone.replace('/', '_')}-{head}-{self.strategy}{suffix}"


# ---- one run -------------------------------------------------------------------------------------


def build_net(cfg: FoodConfig) -> TransferNet:
    return create_transfer_net(cfg.backbone, cfg.head, cfg.num_classes, pretrained=cfg.strategy != "scratch",
                               activation=cfg.activation, dropout=cfg.dropout, batch_norm=cfg.head_batch_norm)


def load_data(cfg: FoodConfig, pre: Preprocess) -> FoodData:
    """The config's Food-101 splits, decoded at the backbone's stored size with its interpolation."""
    return load_food101(cfg.data_dir or None, root=cfg.data_root or None, num_classes=cfg.num_classes,
                        per_class_limit=cfg.per_class_limit, val_fraction=cfg.val_fraction,
                        image_size=pre.stored_size, interpolation=pre.interpolation, seed=cfg.seed)


def evaluate(outcome: Outcome, cfg: FoodConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of the trained model (best weights loaded) on ``split``, fed as in training."""
    on_features = outcome.inputs.kind == "features"
    precision = "32-true" if on_features else resolve_precision(cfg.precision, cfg.accelerator)
    model = outcome.model.to(run_device(cfg))
    return predict_logits(model, outcome.inputs.loader(split, cfg.eval_batch_size), precision=precision)


def logged_train_acc(run_dir: Path, best_epoch: int) -> float:
    with (run_dir / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("train_acc")]
    row = next((r for r in rows if int(r["epoch"]) == best_epoch), rows[-1])
    return float(row["train_acc"])


def train(cfg: FoodConfig) -> Path:
    """Train one backbone + head + strategy; returns its run folder (see ``cnnlab.runs``)."""
    pl.seed_everything(cfg.seed, verbose=False)
    started = time.perf_counter()
    net = build_net(cfg)
    pre = preprocess_for(net.backbone, cfg.input_size)
    data = load_data(cfg, pre)
    run_dir = open_run(EXERCISE, cfg)
    with diverged_runs_recorded(run_dir, EXERCISE, sum(p.numel() for p in net.parameters()), backbone=cfg.backbone,
                                head=cfg.head, strategy=cfg.strategy, num_classes=len(data.classes)):
        outcome: Outcome = STRATEGIES.create(cfg.strategy, net, data, pre, cfg, run_dir)
    if not outcome.is_global_zero:
        return run_dir

    load_model_weights(outcome.model, outcome.best_ckpt)
    test_logits, test_targets = evaluate(outcome, cfg, "test")
    scores = classification_scores(test_logits, test_targets, data.classes)
    if cfg.eval_train:
        train_acc = accuracy(*evaluate(outcome, cfg, "train"))
    else:
        train_acc = logged_train_acc(run_dir, outcome.best_epoch)
    title = f"{cfg.backbone} + {cfg.head}, {cfg.strategy}: test top-1 {100 * scores['top1']:.1f}%"
    plot_confusion(scores["confusion"], data.classes, run_dir / "confusion.png", title=title)
    entry = resolve_backbone(cfg.backbone)
    write_summary(run_dir, {
        "name": run_dir.name, "exercise": EXERCISE,
        "backbone": cfg.backbone, "timm_model": entry.timm_name,
        "weights": entry.weights if cfg.strategy != "scratch" else "random init",
        "head": cfg.head, "strategy": cfg.strategy, "unfreeze": cfg.unfreeze if cfg.strategy == "finetune" else None,
        "params": sum(p.numel() for p in net.parameters()), "trainable_params": outcome.trainable_params,
        "epochs": outcome.epochs, "best_epoch": outcome.best_epoch,
        "monitor": f"{eval_split(cfg)}_acc", "best_monitored": outcome.best_score,
        "train_acc": train_acc, "test_acc": scores["top1"], "top5": scores["top5"],
        "train_acc_source": "best checkpoint re-evaluated" if cfg.eval_train else "logged during the best epoch",
        "per_class_acc": scores["per_class"], "confusion": scores["confusion"], "confusion_png": "confusion.png",
        "classes": data.classes, "num_classes": len(data.classes),
        "train_images": len(data.train), "test_images": len(data.test),
        "val_images": len(data.val) if data.val is not None else 0,
        "preprocess": {"input_size": pre.input_size, "stored_size": pre.stored_size, "mean": pre.mean,
                       "std": pre.std, "interpolation": pre.interpolation},
        "features": outcome.feature_info,
        "checkpoint": ("the head alone (model.head.*): the backbone is the unchanged pretrained one"
                       if outcome.inputs.kind == "features" else "the whole classifier (model.backbone.*, model.head.*)"),
        "phases": outcome.phases,
        "hyperparameters": {"optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size,
                            "weight_decay": cfg.weight_decay, "schedule": cfg.schedule, "dropout": cfg.dropout,
                            "finetune_lr": cfg.finetune_lr if cfg.strategy == "finetune" else None,
                            "label_smoothing": cfg.label_smoothing},
        "wall_time_s": outcome.wall_time_s, "total_time_s": time.perf_counter() - started,
        "seed": cfg.seed, **environment(),
    })
    return run_dir


# ---- the comparison ------------------------------------------------------------------------------


def run_config(defaults: dict[str, Any], run: dict[str, Any], overrides: dict[str, Any]) -> FoodConfig:
    try:
        return cfgmod.from_dict(FoodConfig, {**defaults, **run, **overrides})
    except ConfigError as e:
        raise ConfigError(f"run {run['name']!r}: {e}") from None


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def table_row(s: dict[str, Any]) -> dict[str, Any]:
    strategy = s["strategy"] + (f" (last {s['unfreeze']})" if s.get("unfreeze") else "")
    if is_diverged(s):  # no result to show: say so in every result column
        return {"Backbone": s["backbone"], "Head": s["head"], "Strategy": strategy, "Trainable params": "",
                "Epochs": f"diverged in epoch {s.get('diverged_epoch', '?')}", "Time": _minutes(s["wall_time_s"]),
                "Acc. train %": "diverged", "Acc. test %": "diverged", "Top-5 %": "diverged"}
    return {
        "Backbone": s["backbone"], "Head": s["head"], "Strategy": strategy,
        "Trainable params": f"{s['trainable_params']:,}",
        "Epochs": f"{s['epochs']} (best {s['best_epoch']})",
        "Time": _minutes(s["wall_time_s"]),
        "Acc. train %": f"{100 * s['train_acc']:.1f}", "Acc. test %": f"{100 * s['test_acc']:.1f}",
        "Top-5 %": f"{100 * s['top5']:.1f}",
    }


def best_sentence(summaries: list[dict[str, Any]]) -> str:
    results = [s for s in summaries if not is_diverged(s)]
    if not results:
        return "Every run diverged: there is no result to compare."
    best = max(results, key=lambda s: (s["test_acc"], s["top5"]))
    blocks = {"1": "the last block", "all": "every block"}.get(best.get("unfreeze"), f"the last {best.get('unfreeze')} blocks")
    how = best["strategy"] + (f" with {blocks} unfrozen" if best.get("unfreeze") else "")
    return (f"Best configuration: {best['backbone']} with a {best['head']} head, {how}, at "
            f"{100 * best['test_acc']:.1f}% test accuracy (top-5 {100 * best['top5']:.1f}%) on "
            f"{best['num_classes']} classes.")


def compare(config_path: str | Path, overrides: dict[str, Any] | None = None, runs_dir: str | None = None) -> list[Path]:
    """Train (or reuse) every run of a compare config; write ``runs/food/compare.{md,csv,tex}``."""
    defaults, runs = read_compare_config(config_path)
    if runs_dir:
        defaults["runs_dir"] = runs_dir
    configs = [run_config(defaults, run, overrides or {}) for run in runs]  # every config checked up front
    summaries = [run_or_reuse(EXERCISE, cfg, train) for cfg in configs]
    sentence = best_sentence(summaries)
    stem = runs_root(defaults.get("runs_dir") or None) / EXERCISE / "compare"
    caption = (f"Food-101, first {summaries[0]['num_classes']} classes: backbones, heads and strategies "
               f"(test split, best checkpoint; Time is training time, frozen heads from cached features)")
    outputs = write_table([table_row(s) for s in summaries], stem, caption=caption)
    files.write_text(outputs[0], outputs[0].read_text() + f"\n{sentence}\n")
    print(outputs[0].read_text())
    diverged = sum(is_diverged(s) for s in summaries)
    if diverged:
        raise TrainingDiverged(f"{diverged} run(s) diverged; the comparison shows them as diverged ({outputs[0]})")
    return outputs


def describe_backbone(name: str) -> dict:
    """One row of ``cnnlab food backbones`` (built on the meta device: no weights, no memory)."""
    entry = resolve_backbone(name)
    with torch.device("meta"):
        model = timm.create_model(entry.timm_name, pretrained=False, num_classes=0)
    pre = preprocess_for(model)
    return {"name": entry.name, "timm model": entry.timm_name,
            "params (M)": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "features": int(getattr(model, "head_hidden_size", None) or model.num_features), "input": f"{pre.input_size}px (cached {pre.stored_size}px)",
            "mean/std": f"{pre.mean}/{pre.std}", "weights": entry.weights}


# ---- command line --------------------------------------------------------------------------------


def cmd_backbones(args: argparse.Namespace) -> int:
    print(to_markdown([describe_backbone(name) for name in BACKBONES.names()]))
    print("Any other timm model name with pretrained weights works too (weights from the Hugging Face hub).")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    cfg = resolve_config(FoodConfig, args)
    run_dir = train(cfg)
    if (run_dir / "summary.json").is_file():
        s = read_summary(run_dir)
        print(f"{run_dir}: train acc {100 * s['train_acc']:.1f}%, test acc {100 * s['test_acc']:.1f}% "
              f"(top-5 {100 * s['top5']:.1f}%; best epoch {s['best_epoch']} of {s['epochs']}, "
              f"{s['wall_time_s']:.0f} s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    overrides = parse_key_values(args.set, "--set")
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    compare(args.config, overrides=overrides, runs_dir=args.runs_dir)
    return 0


def add_commands(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    cmds = command_group(sub, name, help_text, __doc__)

    p = cmds.add_parser("backbones", help="list the registered backbones: params, input size, weights source")
    p.set_defaults(func=cmd_backbones)

    p = cmds.add_parser("train", help="train one backbone + head + strategy into runs/food/<name>/")
    add_config_file_flag(p)
    cfgmod.add_config_flags(p, FoodConfig)
    p.set_defaults(func=cmd_train)

    p = cmds.add_parser("compare", help="train or reuse every run of a config and write runs/food/compare.*")
    p.add_argument("--config", default="configs/food/compare.yaml", help="compare config [default: %(default)s]")
    p.add_argument("--data-dir", default=None, help="Food-101 folder or archive, for every run")
    p.add_argument("--runs-dir", default=None, help="folder holding the runs [default: ./runs]")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key for every run, repeatable (e.g. --set epochs=1)")
    p.set_defaults(func=cmd_compare)
