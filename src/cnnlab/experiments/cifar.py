"""Exercise 1: non-sequential CNNs on CIFAR-10.

    cnnlab cifar archs                                # the registered architectures
    cnnlab cifar summary --arch multipath             # layer table for a 3x32x32 input
    cnnlab cifar graph --arch multipath --out g.svg   # architecture graph
    cnnlab cifar train --arch residual --epochs 30    # one run -> runs/cifar/<name>/
    cnnlab cifar compare --config configs/cifar/table1-quick.yaml [--seeds 3]   # Table 1

From Python: ``train(CifarConfig(arch="multipath", epochs=2))`` returns the run folder.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch

from cnnlab import files
from cnnlab import config as cfgmod
from cnnlab.config import field
from cnnlab.data import cifar10
from cnnlab.data.augment import Normalize
from cnnlab.data.loader import TensorLoader, class_balanced_indices, split_balanced
from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.experiments.common import (add_config_file_flag, command_group, diverged_runs_recorded,
                                       open_run, parse_key_values, read_compare_config, resolve_config,
                                       run_or_reuse)
from cnnlab.models import count_params, create_model, describe, list_models
from cnnlab.models.inspect import draw_graph, summary_text
from cnnlab.models.layers import init_from_data
from cnnlab.paths import runs_root
from cnnlab.viz.tables import fmt_pct, write_table
from cnnlab.train.classifier import ClassifierModule, ClassifierTrainConfig, accuracy, predict_logits
from cnnlab.train.engine import fit, load_model_weights
from cnnlab.runs import environment, is_diverged, read_summary, write_summary

EXERCISE = "cifar"
INPUT = (3, 32, 32)


@dataclass
class CifarConfig(ClassifierTrainConfig):
    arch: str = field("residual", "registered architecture (see `cnnlab cifar archs`)")
    model: dict[str, Any] = field({}, "options of the architecture's config, e.g. {widths: [32, 64, 128]}")
    data_dir: str = field("", "CIFAR-10 source: cifar-10-batches-py/ folder, image tree, or .tar/.tar.gz of either")
    data_root: str = field("", "folder in which datasets are looked up (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    limit_train: int = field(0, "class-balanced subset of the training images (0: all)")
    limit_test: int = field(0, "class-balanced subset of the test images (0: all)")
    monitor: Literal["test", "val"] = field("test", "split whose accuracy picks best.ckpt: test (as the lab asks) or val (10% of train held out)")
    val_fraction: float = field(0.1, "fraction of train held out when monitoring val")
    # 32 by default: the first runs people try are a few epochs on a few thousand images, where the number
    # of steps matters more than the throughput per image (bench/cifar_quick_defaults.py).
    batch_size: int = field(32, "images per batch (per device)")
    # Off by default: on runs of a few epochs, crops cost more than they regularise; recipes for longer
    # runs set it (Table 1 and the fast recipe do).
    crop_padding: int = field(0, "random-crop augmentation padding in pixels (0: off; 2-4 pays on long runs)")
    flip: bool = field(True, "random horizontal flips")
    eval_batch_size: int = field(1000, "images per batch when evaluating")

    def __post_init__(self) -> None:
        if self.arch not in list_models():
            from cnnlab.registry import did_you_mean
            raise ConfigError(f"arch: unknown architecture {self.arch!r}{did_you_mean(self.arch, list_models())}; "
                              f"known: {', '.join(list_models())}")
        if not self.name:
            self.name = f"{self.arch}-s{self.seed}"


# ---- data --------------------------------------------------------------------------------------------


@dataclass
class Splits:
    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    eval_split: str


def make_splits(cfg: CifarConfig) -> Splits:
    data = cifar10.load(cfg.data_dir or None, cfg.data_root or None)
    train_x, train_y, test_x, test_y = data.train_x, data.train_y, data.test_x, data.test_y
    if cfg.limit_train:
        idx = class_balanced_indices(train_y, min(cfg.limit_train, len(train_y)), seed=cfg.seed)
        train_x, train_y = train_x[idx], train_y[idx]
    if cfg.limit_test:
        idx = class_balanced_indices(test_y, min(cfg.limit_test, len(test_y)), seed=cfg.seed)
        test_x, test_y = test_x[idx], test_y[idx]
    if cfg.monitor == "val":
        keep, held = split_balanced(train_y, cfg.val_fraction, seed=cfg.seed)
        return Splits(train_x[keep], train_y[keep], train_x[held], train_y[held], test_x, test_y, "val")
    return Splits(train_x, train_y, test_x, test_y, test_x, test_y, "test")


def train_transform(cfg: CifarConfig) -> Normalize:
    return Normalize(cifar10.MEAN, cifar10.STD, crop_padding=cfg.crop_padding, flip=cfg.flip,
                     channels_last=cfg.channels_last)


def eval_transform(cfg: CifarConfig) -> Normalize:
    return Normalize(cifar10.MEAN, cifar10.STD, channels_last=cfg.channels_last)


def loaders(cfg: CifarConfig, splits: Splits) -> tuple[TensorLoader, TensorLoader]:
    train = TensorLoader(splits.train_x, splits.train_y, cfg.batch_size, shuffle=True, drop_last=len(splits.train_x) > cfg.batch_size,
                         transform=train_transform(cfg), seed=cfg.seed)
    evaluation = TensorLoader(splits.eval_x, splits.eval_y, cfg.eval_batch_size, transform=eval_transform(cfg))
    return train, evaluation


# ---- one run -----------------------------------------------------------------------------------------


def build_model(cfg: CifarConfig) -> torch.nn.Module:
    return create_model(cfg.arch, num_classes=len(cifar10.CLASSES), **cfg.model)


def fit_to_data(model: torch.nn.Module, cfg: CifarConfig, splits: Splits, sample: int = 5000) -> None:
    """Data-initialised layers (the whitening stem of ``residual_fast``) see a seeded sample of train."""
    g = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randperm(len(splits.train_x), generator=g)[:sample]
    init_from_data(model, eval_transform(cfg)(splits.train_x[idx]))


def write_model_files(model: torch.nn.Module, run_dir: Path) -> Path:
    files.write_text(run_dir / "model_summary.txt", summary_text(model, INPUT) + "\n")
    return draw_graph(model, INPUT, run_dir / "architecture.svg")


def callback_text(cfg: CifarConfig, split: str) -> str:
    text = f"checkpoint of the best {split}_acc (max)"
    if cfg.early_stopping_patience:
        text += f" + EarlyStopping({split}_acc, patience {cfg.early_stopping_patience})"
    return text


def train(cfg: CifarConfig) -> Path:
    """Train one architecture; returns its run folder (see ``cnnlab.runs``)."""
    pl.seed_everything(cfg.seed, verbose=False)
    splits = make_splits(cfg)
    model = build_model(cfg)
    fit_to_data(model, cfg, splits)
    run_dir = open_run(EXERCISE, cfg)
    graph = write_model_files(model, run_dir)
    module = ClassifierModule(model, cfg, eval_split=splits.eval_split, hparams=cfgmod.to_dict(cfg))
    train_loader, eval_loader = loaders(cfg, splits)
    started = time.perf_counter()
    with diverged_runs_recorded(run_dir, EXERCISE, count_params(model), arch=cfg.arch, architecture=describe(model)):
        result = fit(module, train_loader, eval_loader, run_dir, cfg, monitor=f"{splits.eval_split}_acc", mode="max")
    if not result.is_global_zero:
        return run_dir

    best = load_model_weights(build_model(cfg), result.best_ckpt)
    if cfg.channels_last:
        best = best.to(memory_format=torch.channels_last)
    precision = result.precision  # re-evaluated in the precision the Trainer used
    scores = {}
    for split, x, y in (("train", splits.train_x, splits.train_y), ("test", splits.test_x, splits.test_y)):
        logits, targets = predict_logits(best, TensorLoader(x, y, cfg.eval_batch_size, transform=eval_transform(cfg)),
                                         flip_tta=cfg.flip_tta, precision=precision)
        scores[f"{split}_acc"] = accuracy(logits, targets)
    write_summary(run_dir, {
        "name": run_dir.name, "exercise": EXERCISE, "arch": cfg.arch,
        "architecture": describe(model), "params": count_params(model),
        "epochs": result.epochs, "best_epoch": result.best_epoch, "monitor": f"{splits.eval_split}_acc",
        "best_monitored": result.best_score, **scores,
        "callback": callback_text(cfg, splits.eval_split),
        "hyperparameters": {"optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size,
                            "weight_decay": cfg.weight_decay, "schedule": cfg.schedule,
                            "label_smoothing": cfg.label_smoothing, "crop_padding": cfg.crop_padding,
                            "flip": cfg.flip, "precision": precision, "precision_reason": result.precision_reason},
        "train_images": len(splits.train_x), "test_images": len(splits.test_x),
        "wall_time_s": result.wall_time_s, "total_time_s": time.perf_counter() - started,
        "graph": graph.name, "seed": cfg.seed, **environment(),
    })
    return run_dir


# ---- Table 1 -----------------------------------------------------------------------------------------


@dataclass
class CompareEntry:
    name: str
    settings: dict[str, Any]


def compare_entries(path: str | Path) -> tuple[dict[str, Any], list[CompareEntry]]:
    defaults, runs = read_compare_config(path)
    return defaults, [CompareEntry(str(r["name"]), {k: v for k, v in r.items() if k != "name"}) for r in runs]


def entry_config(defaults: dict[str, Any], entry: CompareEntry, seed: int, overrides: dict[str, Any]) -> CifarConfig:
    settings = {**defaults, **entry.settings, **overrides, "seed": seed, "name": f"{entry.name}-s{seed}"}
    try:
        return cfgmod.from_dict(CifarConfig, settings)
    except ConfigError as e:
        raise ConfigError(f"run {entry.name!r}: {e}") from None


def table_row(entry: CompareEntry, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    diverged = [s for s in summaries if is_diverged(s)]
    if diverged:  # a diverged seed has no result: the entry shows that, never a number
        first = diverged[0]
        return {"Model": entry.name, "Architecture": first.get("architecture", entry.name), "Callback": "",
                "Acc. train %": "diverged", "Acc. test %": "diverged", "Params": f"{first['params']:,}",
                "Epochs": f"diverged in epoch {first.get('diverged_epoch', '?')}",
                "Optimizer, LR, batch": "", "Time": f"{first['wall_time_s']:.0f} s"}
    first = summaries[0]
    hp = first["hyperparameters"]
    return {
        "Model": entry.name,
        "Architecture": first["architecture"],
        "Callback": first["callback"],
        "Acc. train %": fmt_pct([s["train_acc"] for s in summaries]),
        "Acc. test %": fmt_pct([s["test_acc"] for s in summaries]),
        "Params": f"{first['params']:,}",
        "Epochs": f"{first['epochs']} (best {first['best_epoch']})" if len(summaries) == 1 else str(first["epochs"]),
        "Optimizer, LR, batch": f"{hp['optimizer']}, {hp['lr']:g}, {hp['batch_size']}",
        "Time": f"{sum(s['wall_time_s'] for s in summaries) / len(summaries):.0f} s",
    }


def compare(config_path: str | Path, seeds: int = 1, overrides: dict[str, Any] | None = None,
            runs_dir: str | None = None) -> list[Path]:
    """Train (or reuse) every entry of a compare config for each seed; write Table 1."""
    defaults, entries = compare_entries(config_path)
    if runs_dir:
        defaults["runs_dir"] = runs_dir
    rows, outputs, diverged = [], [], 0
    for entry in entries:
        summaries = []
        for seed in range(int(defaults.get("seed", 0)), int(defaults.get("seed", 0)) + seeds):
            summaries.append(run_or_reuse(EXERCISE, entry_config(defaults, entry, seed, overrides or {}), train))
            diverged += is_diverged(summaries[-1])
        rows.append(table_row(entry, summaries))
    stem = runs_root(defaults.get("runs_dir") or None) / EXERCISE / "table1"
    caption = "Table 1: CIFAR-10 architectures" + (f" (mean ± std over {seeds} seeds)" if seeds > 1 else "")
    outputs = write_table(rows, stem, caption=caption)
    print(outputs[0].read_text())
    if diverged:
        raise TrainingDiverged(f"{diverged} run(s) diverged; Table 1 shows them as diverged ({outputs[0]})")
    return outputs


# ---- command line ------------------------------------------------------------------------------------


def _arch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="residual", help="registered architecture [default: residual]")
    parser.add_argument("--model-opt", action="append", metavar="KEY=VALUE",
                        help="architecture option, repeatable (e.g. widths=[32,64,128])")


def _model_from_args(args: argparse.Namespace) -> torch.nn.Module:
    return create_model(args.arch, num_classes=10, **parse_key_values(args.model_opt, "--model-opt"))


def cmd_archs(args: argparse.Namespace) -> int:
    for name in list_models():
        model = create_model(name)
        print(f"{name:<14} {count_params(model):>10,} params  {describe(model)[:110]}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    print(summary_text(_model_from_args(args), INPUT))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    path = draw_graph(_model_from_args(args), INPUT, args.out, depth=args.depth)
    print(path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    extra = {"model": parse_key_values(args.model_opt, "--model-opt")} if args.model_opt else {}
    cfg = resolve_config(CifarConfig, args, extra)
    run_dir = train(cfg)
    if (run_dir / "summary.json").is_file():
        s = read_summary(run_dir)
        print(f"{run_dir}: train acc {100 * s['train_acc']:.1f}%, test acc {100 * s['test_acc']:.1f}% "
              f"(best epoch {s['best_epoch']} of {s['epochs']}, {s['wall_time_s']:.0f} s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    overrides = parse_key_values(args.set, "--set")
    compare(args.config, seeds=args.seeds, overrides=overrides, runs_dir=args.runs_dir)
    return 0


def add_commands(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    cmds = command_group(sub, name, help_text, __doc__)

    p = cmds.add_parser("archs", help="list the registered architectures with parameter counts")
    p.set_defaults(func=cmd_archs)

    p = cmds.add_parser("summary", help="layer table: layer, output shape, params (input 3x32x32)")
    _arch_args(p)
    p.set_defaults(func=cmd_summary)

    p = cmds.add_parser("graph", help="architecture graph with shapes (.svg, .png, or .gv source)")
    _arch_args(p)
    p.add_argument("--out", default="architecture.svg", help="output file [default: architecture.svg]")
    p.add_argument("--depth", type=int, default=3, help="nesting depth to expand [default: 3]")
    p.set_defaults(func=cmd_graph)

    p = cmds.add_parser("train", help="train one architecture into runs/cifar/<name>/")
    add_config_file_flag(p)
    p.add_argument("--model-opt", action="append", metavar="KEY=VALUE",
                   help="architecture option, repeatable (e.g. widths=[32,64,128])")
    cfgmod.add_config_flags(p, CifarConfig)
    p.set_defaults(func=cmd_train)

    p = cmds.add_parser("compare", help="train or reuse every run of a config and write Table 1")
    p.add_argument("--config", default="configs/cifar/table1-quick.yaml", help="compare config [default: %(default)s]")
    p.add_argument("--seeds", type=int, default=1, help="seeds per entry; accuracies become mean ± std [default: 1]")
    p.add_argument("--runs-dir", default=None, help="folder holding the runs [default: ./runs]")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key for every run, repeatable (e.g. --set data_dir=PATH)")
    p.set_defaults(func=cmd_compare)
