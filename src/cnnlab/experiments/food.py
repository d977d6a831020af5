"""Exercise 2: transfer learning on Food-101 (first N classes): backbones, heads and strategies.

    cnnlab food backbones                                    # registered backbones: params, input, weights
    cnnlab food train --backbone efficientnet_lite0 --head mlp:512 --strategy frozen \\
        --data-dir ../shared/data/food-101-first10.tar       # one run -> runs/food/<name>/
    cnnlab food train --backbone resnet50 --head linear --strategy finetune --finetune.unfreeze 2
    cnnlab food compare --preset quick                       # runs/food/compare.{md,csv,tex}
    cnnlab food evaluate runs/food/<name> --split test       # re-score the best checkpoint

From Python: ``train(build(FoodConfig, strategy="frozen", data_dir=...))`` returns the run folder.
Each run folder holds config.yaml, metrics.csv, checkpoints/{best,last}.ckpt (the whole classifier, or the
head alone when it trained from cached features), confusion.png (best checkpoint, test split) and
summary.json (train, test, top-5 and per-class accuracy; see ``train``).

The strategies (``STRATEGIES``), each training a ``TransferNet`` through ``train.transfer.fit_phase``:

* ``frozen``: the backbone in eval mode without gradients (``freeze``). By default its pooled features
  are computed once and cached (``train.features``) and the head trains from them in seconds, its
  checkpoints holding the head alone (``HeadOnFeatures``); with ``cache`` off every batch goes through
  the backbone, with augmentation.
* ``finetune``: the keras.io recipe in two phases. Phase 1 is ``frozen`` for ``finetune.head_epochs``
  (into ``<run>/phase1/``); phase 2 unfreezes the last K blocks (``unfreeze_last``) and trains on augmented
  images at ``finetune.lr``, BatchNorms of the still-frozen blocks kept in inference mode (and, unless
  ``finetune.bn_stats``, those of the unfrozen blocks too, as keras.io does).
* ``scratch``: the same network from random weights, every parameter trained: the baseline that shows
  what the ImageNet weights buy.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import timm
import torch

from cnnlab import config as cfgmod
from cnnlab import files
from cnnlab.data import food101
from cnnlab.data.cache import fingerprint
from cnnlab.data.splits import Dataset, subset
from cnnlab.data.preprocess import Preprocess, preprocess_for
from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.experiments.common import (diverged_runs_recorded, open_run, preset_run, read_compare_config,
                                       recorded_summary, run_or_reuse)
from cnnlab.experiments.configs import (DEFAULT_FOOD_CLASSES, CompareOptions, EvaluateOptions, FoodConfig,
                                        SweepOptions)
from cnnlab.models.backbones import BACKBONES, resolve_backbone
from cnnlab.models.heads import parse_head
from cnnlab.models.transfer import HeadOnFeatures, TransferNet, create_transfer_net
from cnnlab.paths import runs_root
from cnnlab.registry import Registry
from cnnlab.runs import best_checkpoint, environment, is_diverged, read_summary, write_summary
from cnnlab.train.checkpoint import load_model_weights
from cnnlab.train.classifier import accuracy, predict_logits
from cnnlab.train.engine import cpu_threads, resolve_precision
from cnnlab.train.features import image_batch_size
from cnnlab.train.freeze import freeze, unfreeze, unfreeze_last
from cnnlab.train.transfer import (Inputs, Outcome, Phase, feature_inputs, fit_phase, image_inputs,
                                   merge_phase_metrics, run_device)
from cnnlab.viz.classification import classification_scores, plot_confusion
from cnnlab.stats import wilson_interval
from cnnlab.viz.comparisons import chosen_on, food_choice, food_row, strategy_text, sweep_row
from cnnlab.viz.curves import plot_data_size_sweep
from cnnlab.viz.tables import to_markdown, write_table

EXERCISE = "food"
STRATEGIES = Registry("strategy")


# ---- one run -------------------------------------------------------------------------------------


def check_names(cfg: FoodConfig) -> None:
    """Fail on an unknown backbone or a bad head spec before any data is read (``CnnlabError``)."""
    resolve_backbone(cfg.backbone)
    parse_head(cfg.head)


def weightless_backbone(name: str) -> torch.nn.Module:
    """The backbone built on the meta device: its shapes and timm data config, no weights, no memory."""
    with torch.device("meta"):
        return timm.create_model(resolve_backbone(name).timm_name, pretrained=False, num_classes=0)


def backbone_preprocess(name: str, input_size: int = 0) -> Preprocess:
    """The backbone's own preprocessing (timm's data config), read before any weights are loaded."""
    return preprocess_for(weightless_backbone(name), input_size)


def build_net(cfg: FoodConfig, num_classes: int) -> TransferNet:
    return create_transfer_net(cfg.backbone, cfg.head, num_classes, pretrained=cfg.strategy != "scratch",
                               activation=cfg.activation, dropout=cfg.dropout, batch_norm=cfg.head_batch_norm)


def load_data(cfg: FoodConfig, pre: Preprocess) -> Dataset:
    """The config's Food-101 splits, decoded at the backbone's stored size with its interpolation. With
    ``num_classes`` 0, the lab's 20 classes, or all the data has when it has fewer (said in one line)."""
    data = food101.load(cfg.data.data_dir or None, cfg.data.data_root or None,
                        num_classes=cfg.data.num_classes or DEFAULT_FOOD_CLASSES,
                        fewer_ok=cfg.data.num_classes == 0, per_class_limit=cfg.data.per_class_limit,
                        val_fraction=cfg.data.val_fraction, image_size=pre.stored_size,
                        interpolation=pre.interpolation, eval_seed=cfg.data.eval_seed)
    if cfg.data.train_per_class:  # the sweep's training sizes: val (held out above) and test stay whole
        data = dataclasses.replace(data, train=subset(data.train, cfg.data.train_per_class * len(data.classes),
                                                      seed=cfg.run.seed))
    if not cfg.data.num_classes and len(data.classes) < DEFAULT_FOOD_CLASSES:
        print(f"cnnlab: food: the data has {len(data.classes)} classes, fewer than the lab's {DEFAULT_FOOD_CLASSES}: "
              f"using those {len(data.classes)} (set num_classes, --num-classes, to insist)", file=sys.stderr)
    return data


def data_fingerprint(cfg: FoodConfig) -> str:
    """The fingerprint of the Food-101 folder ``cfg`` reads (as its run's summary records it)."""
    return fingerprint(food101.locate(cfg.data.data_dir or None, cfg.data.data_root or None))


def eval_split(cfg: FoodConfig) -> str:
    return "val" if cfg.data.val_fraction > 0 else "test"


def eval_batch_size(cfg: FoodConfig, on_features: bool = False) -> int:
    """``data.eval_batch_size``, or when 0: 1024 pooled feature vectors, or ``image_batch_size`` images
    (16 on a CPU, 256 on a GPU)."""
    if cfg.data.eval_batch_size:
        return cfg.data.eval_batch_size
    return 1024 if on_features else image_batch_size(run_device(cfg.hardware))


def phase(cfg: FoodConfig, on_features: bool = False, **changes: Any) -> Phase:
    """How a phase of ``cfg`` trains (on cached features or on images); ``changes`` replace fields of its
    optimisation."""
    return Phase(dataclasses.replace(cfg.optim, **changes), cfg.run, cfg.hardware, eval_split(cfg),
                 eval_batch_size(cfg, on_features), cfgmod.to_dict(cfg))


def features_of(net: TransferNet, data: Dataset, pre: Preprocess, cfg: FoodConfig) -> Inputs:
    # With a val split, train and val are parts of the official train split (drawn by eval_seed).
    drawn_by = (cfg.data.val_fraction, cfg.data.eval_seed) if data.val is not None else None
    train_draw = (cfg.data.train_per_class, cfg.run.seed) if cfg.data.train_per_class else ()
    limit = food101.effective_limit(data.source, list(data.classes), cfg.data.per_class_limit)
    return feature_inputs(net, data, pre, cfg.hardware, batch_size=eval_batch_size(cfg),
                          selection=(limit, drawn_by), train_selection=train_draw)


@STRATEGIES.register("frozen")
def train_frozen(net: TransferNet, data: Dataset, pre: Preprocess, cfg: FoodConfig, run_dir: Path) -> Outcome:
    freeze(net.backbone)
    if not cfg.cache:
        return fit_phase(net, image_inputs(data, pre), phase(cfg), run_dir, "frozen")
    inputs = features_of(net, data, pre, cfg)
    head = HeadOnFeatures(net)
    if cfg.hardware.precision == "auto":  # tiny matmuls on cached features: bf16 would cost accuracy, buy no speed
        cfg = dataclasses.replace(cfg, hardware=dataclasses.replace(cfg.hardware, precision="32-true"))
    with cpu_threads(1 if run_device(cfg.hardware).type == "cpu" else 0):
        outcome = fit_phase(head, inputs, phase(cfg, on_features=True), run_dir, "frozen (cached features)")
    outcome.feature_info = inputs.info
    return outcome


@STRATEGIES.register("finetune")
def train_finetune(net: TransferNet, data: Dataset, pre: Preprocess, cfg: FoodConfig, run_dir: Path) -> Outcome:
    if cfg.finetune.unfreeze != "all" and int(cfg.finetune.unfreeze) < 1:
        raise ConfigError("finetune.unfreeze must be at least 1 (or all); 0 is the frozen strategy")
    phase1 = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, epochs=cfg.finetune.head_epochs))
    head = train_frozen(net, data, pre, phase1, run_dir / "phase1")
    load_model_weights(head.model, head.last_ckpt)  # the head as phase 1 left it, as in the keras recipe
    unfreeze(net.head)
    unfreeze_last(net.backbone, cfg.finetune.unfreeze, train_bn=cfg.finetune.bn_stats)
    if head.is_global_zero:
        merge_phase_metrics(run_dir / "phase1" / "metrics.csv", run_dir / "metrics.csv")
    body = fit_phase(net, image_inputs(data, pre), phase(cfg, lr=cfg.finetune.lr), run_dir,
                     f"finetune (last {cfg.finetune.unfreeze} blocks)", epoch_offset=head.epochs, row_extra={"phase": 2})
    body.phases = head.phases + body.phases
    body.feature_info = head.feature_info
    body.epochs += head.epochs
    body.best_epoch += head.epochs  # counted over both phases
    body.wall_time_s += head.wall_time_s
    return body


@STRATEGIES.register("scratch")
def train_scratch(net: TransferNet, data: Dataset, pre: Preprocess, cfg: FoodConfig, run_dir: Path) -> Outcome:
    unfreeze(net)
    return fit_phase(net, image_inputs(data, pre), phase(cfg), run_dir, "scratch")


def scored(model: torch.nn.Module, inputs: Inputs, cfg: FoodConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, C) and targets (N,) of ``model`` (weights as loaded) on ``split``, fed as in training."""
    on_features = inputs.kind == "features"
    precision = "32-true" if on_features else resolve_precision(cfg.hardware.precision, cfg.hardware.accelerator)
    model = model.to(run_device(cfg.hardware))
    return predict_logits(model, inputs.loader(split, eval_batch_size(cfg, on_features)), precision=precision)


def logged_train_acc(run_dir: Path, best_epoch: int) -> float:
    with (run_dir / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("train_acc")]
    row = next((r for r in rows if int(r["epoch"]) == best_epoch), rows[-1])
    return float(row["train_acc"])


def train(cfg: FoodConfig) -> Path:
    """Train one backbone + head + strategy; returns its run folder (see ``cnnlab.runs``).

    Raises:
        CnnlabError: unknown backbone or head (before any data is read), missing or corrupt data.
        TrainingDiverged: the loss became NaN; the run is recorded as diverged.
    """
    check_names(cfg)
    pl.seed_everything(cfg.run.seed, verbose=False)
    started = time.perf_counter()
    pre = backbone_preprocess(cfg.backbone, cfg.data.input_size)
    data = load_data(cfg, pre)
    net = build_net(cfg, len(data.classes))
    # The class count used, recorded (config.yaml, the name), whether asked for or taken from the data.
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_classes=len(data.classes)))
    run_dir = open_run(EXERCISE, cfg, cfg.run, data.fingerprint)
    with diverged_runs_recorded(run_dir, EXERCISE, sum(p.numel() for p in net.parameters()), backbone=cfg.backbone,
                                head=cfg.head, strategy=cfg.strategy, num_classes=len(data.classes)):
        outcome: Outcome = STRATEGIES.create(cfg.strategy, net, data, pre, cfg, run_dir)
    if not outcome.is_global_zero:
        return run_dir

    load_model_weights(outcome.model, outcome.best_ckpt)
    scores = classification_scores(*scored(outcome.model, outcome.inputs, cfg, "test"), data.classes)
    if cfg.eval_train:
        train_acc = accuracy(*scored(outcome.model, outcome.inputs, cfg, "train"))
    else:
        train_acc = logged_train_acc(run_dir, outcome.best_epoch)
    title = (f"{cfg.backbone} + {cfg.head}, {cfg.strategy}: test top-1 {100 * scores['top1']:.1f}%"
             + (" (epoch chosen on test: optimistic)" if eval_split(cfg) == "test" else ""))
    plot_confusion(scores["confusion"], data.classes, run_dir / "confusion.png", title=title)
    entry = resolve_backbone(cfg.backbone)
    finetune = cfg.strategy == "finetune"
    write_summary(run_dir, {
        "name": run_dir.name, "exercise": EXERCISE,
        "backbone": cfg.backbone, "timm_model": entry.timm_name,
        "weights": entry.weights if cfg.strategy != "scratch" else "random init",
        "head": cfg.head, "strategy": cfg.strategy, "unfreeze": cfg.finetune.unfreeze if finetune else None,
        "params": sum(p.numel() for p in net.parameters()), "trainable_params": outcome.trainable_params,
        "epochs": outcome.epochs, "best_epoch": outcome.best_epoch,
        "monitor": f"{eval_split(cfg)}_acc", "best_monitored": outcome.best_score,
        "train_acc": train_acc, "test_acc": scores["top1"], "top5": scores["top5"],
        "train_acc_source": "best checkpoint re-evaluated" if cfg.eval_train else "logged during the best epoch",
        "per_class_acc": scores["per_class"], "confusion": scores["confusion"], "confusion_png": "confusion.png",
        "classes": data.classes, "num_classes": len(data.classes),
        "train_images": len(data.train), "test_images": len(data.test), "data_fingerprint": data.fingerprint,
        "val_images": len(data.val) if data.val is not None else 0,
        "preprocess": {"input_size": pre.input_size, "stored_size": pre.stored_size, "mean": pre.mean,
                       "std": pre.std, "interpolation": pre.interpolation},
        "features": outcome.feature_info,
        "checkpoint": ("the head alone (model.head.*): the backbone is the unchanged pretrained one"
                       if outcome.inputs.kind == "features" else "the whole classifier (model.backbone.*, model.head.*)"),
        "phases": outcome.phases,
        "hyperparameters": {"optimizer": cfg.optim.optimizer, "lr": cfg.optim.lr, "batch_size": cfg.optim.batch_size,
                            "weight_decay": cfg.optim.weight_decay, "schedule": cfg.optim.schedule,
                            "dropout": cfg.dropout, "finetune_lr": cfg.finetune.lr if finetune else None,
                            "label_smoothing": cfg.optim.label_smoothing},
        "wall_time_s": outcome.wall_time_s, "total_time_s": time.perf_counter() - started,
        "seed": cfg.run.seed, **environment(),
    })
    return run_dir


# ---- re-scoring a finished run -----------------------------------------------------------------


def evaluate_run(run_dir: str | Path, split: str = "test", data_dir: str = "", data_root: str = "") -> dict[str, Any]:
    """Re-score ``run_dir``'s best checkpoint on ``split`` of its own data (or of ``data_dir``/``data_root``).

    Returns:
        {"split", "images", "top1", "top5", "per_class"}: accuracies as fractions in [0, 1].

    Raises:
        ConfigError: not a Food-101 run folder, or a split the run does not have (val without val_fraction).
        CheckpointError: best.ckpt missing, corrupt or unsafe.
    """
    run_dir = Path(run_dir)
    summary = recorded_summary(run_dir, EXERCISE)
    cfg = cfgmod.load(FoodConfig, run_dir / "config.yaml",
                      {k: v for k, v in {"data.data_dir": data_dir, "data.data_root": data_root}.items() if v})
    if not cfg.data.num_classes:  # runs of earlier versions recorded 0 for "as many as the data has"
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_classes=summary["num_classes"]))
    if split == "val" and cfg.data.val_fraction <= 0:
        raise ConfigError(f"{run_dir} has no val split (it was trained with val_fraction 0): use --split test or train")
    check_names(cfg)
    pre = backbone_preprocess(cfg.backbone, cfg.data.input_size)
    data = load_data(cfg, pre)
    net = build_net(cfg, len(data.classes))
    best = best_checkpoint(run_dir)
    head_only = cfg.strategy == "frozen" and cfg.cache
    model = HeadOnFeatures(net) if head_only else net
    load_model_weights(model, best)
    inputs = features_of(net, data, pre, cfg) if head_only else image_inputs(data, pre)
    scores = classification_scores(*scored(model, inputs, cfg, split), data.classes)
    return {"split": split, "images": len(inputs.splits[split]), "top1": scores["top1"], "top5": scores["top5"],
            "per_class": scores["per_class"]}


# ---- the comparison ------------------------------------------------------------------------------


def planned_runs(options: CompareOptions, overrides: dict[str, Any] | None = None) -> dict[str, list[FoodConfig]]:
    """Every run of the preset, by entry name (checked, not trained): what ``compare`` does."""
    defaults, runs = read_compare_config(EXERCISE, options.preset)
    if options.runs_dir:
        defaults["run.runs_dir"] = options.runs_dir
    return {str(run["name"]): [run_config(defaults, run, overrides or {})] for run in runs}


def compare(options: CompareOptions, overrides: dict[str, Any] | None = None) -> list[Path]:
    """Train (or reuse) every run of a preset (``overrides``, any config keys, apply to every run);
    write ``runs/food/compare.{md,csv,tex}`` with the best configuration named."""
    configs = [cfg for cfgs in planned_runs(options, overrides).values() for cfg in cfgs]  # checked up front
    summaries = [run_or_reuse(EXERCISE, cfg, train, data_fingerprint) for cfg in configs]
    sentence = food_choice(summaries)[1]
    stem = runs_root(configs[0].run.runs_dir or None) / EXERCISE / "compare"
    caption = (f"Food-101, first {summaries[0]['num_classes']} classes: backbones, heads and strategies "
               f"(test split, best checkpoint, {chosen_on(summaries)}; Time is training time, frozen heads from "
               f"cached features)")
    outputs = write_table([food_row(s) for s in summaries], stem, caption=caption)
    files.write_text(outputs[0], outputs[0].read_text() + f"\n{sentence}\n")
    print(outputs[0].read_text())
    diverged = sum(is_diverged(s) for s in summaries)
    if diverged:
        raise TrainingDiverged(f"{diverged} run(s) diverged; the comparison shows them as diverged ({outputs[0]})")
    return outputs


def sweep(options: SweepOptions, overrides: dict[str, Any] | None = None) -> list[Path]:
    """The data-size sweep: train (or reuse) every run of a sweep preset (``train_per_class`` sizes per
    strategy) and write ``runs/food/sweep.{md,csv,tex}`` and ``sweep.png`` (test accuracy against images
    per class, one line per strategy, 95% intervals), each point with its budget."""
    configs = [cfg for cfgs in planned_runs(CompareOptions(options.preset, options.runs_dir), overrides).values()
               for cfg in cfgs]
    summaries = [run_or_reuse(EXERCISE, cfg, train, data_fingerprint) for cfg in configs]
    rows = sorted((sweep_row(s) for s in summaries), key=lambda r: (r["Strategy"], r["Images per class"]))
    stem = runs_root(configs[0].run.runs_dir or None) / EXERCISE / "sweep"
    done = [s for s in summaries if not is_diverged(s)]
    caption = (f"Food-101, first {summaries[0]['num_classes']} classes: test accuracy against training images per "
               f"class, every point scored on the same {summaries[0].get('test_images', '?')} test images "
               f"({chosen_on(done or summaries)})")
    outputs = write_table(rows, stem, caption=caption)
    points = []
    for s in done:
        low, high = wilson_interval(s["test_acc"], s["test_images"])
        points.append({"strategy": strategy_text(s), "acc": s["test_acc"], "low": low, "high": high,
                       "per_class": round(s["train_images"] / s["num_classes"])})
    outputs.append(plot_data_size_sweep(points, stem.with_suffix(".png"), title=caption.split(":")[0]))
    # Which runs the sweep is made of, so the report shows them here and not in the comparison.
    files.write_text(stem.with_suffix(".json"), json.dumps({"preset": str(options.preset),
                                                            "runs": [s["name"] for s in summaries]}, indent=2))
    print(outputs[0].read_text())
    diverged = len(summaries) - len(done)
    if diverged:
        raise TrainingDiverged(f"{diverged} run(s) diverged; the sweep shows them as diverged ({outputs[0]})")
    return outputs


def run_config(defaults: dict[str, Any], run: dict[str, Any], overrides: dict[str, Any]) -> FoodConfig:
    """One entry of a preset (see ``preset_run``), its backbone and head checked."""
    cfg = preset_run(FoodConfig, defaults, run, overrides)
    check_names(cfg)
    return cfg


def describe_backbone(name: str) -> dict:
    """One row of ``cnnlab food backbones`` (built on the meta device: no weights, no memory)."""
    entry, model = resolve_backbone(name), weightless_backbone(name)
    pre = preprocess_for(model)
    return {"name": entry.name, "timm model": entry.timm_name,
            "params (M)": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "features": int(getattr(model, "head_hidden_size", None) or model.num_features),
            "input": f"{pre.input_size}px (cached {pre.stored_size}px)",
            "mean/std": f"{pre.mean}/{pre.std}", "weights": entry.weights}


# ---- the commands (see cnnlab.cli) -----------------------------------------------------------------


def cmd_backbones() -> int:
    print(to_markdown([describe_backbone(name) for name in BACKBONES.names()]))
    print("Any other timm model name with pretrained weights works too (weights from the Hugging Face hub).")
    return 0


def cmd_train(cfg: FoodConfig) -> int:
    run_dir = train(cfg)
    if (run_dir / "summary.json").is_file():
        s = read_summary(run_dir)
        print(f"{run_dir}: train acc {100 * s['train_acc']:.1f}%, test acc {100 * s['test_acc']:.1f}% "
              f"(top-5 {100 * s['top5']:.1f}%; best epoch {s['best_epoch']} of {s['epochs']}, {chosen_on([s])}; "
              f"{s['wall_time_s']:.0f} s)")
    return 0


def cmd_compare(options: CompareOptions, overrides: dict[str, Any]) -> int:
    outputs = compare(options, overrides)
    print(f"comparison: {outputs[0]} (also .csv, .tex)")
    return 0


def cmd_sweep(options: SweepOptions, overrides: dict[str, Any]) -> int:
    outputs = sweep(options, overrides)
    print(f"sweep: {outputs[0]} (also .csv, .tex) and {outputs[-1]}")
    return 0


def cmd_evaluate(options: EvaluateOptions) -> int:
    r = evaluate_run(options.run_dir, options.split, options.data_dir, options.data_root)
    print(f"{options.run_dir}: {r['split']} top-1 {100 * r['top1']:.1f}%, top-5 {100 * r['top5']:.1f}% "
          f"on {r['images']} images (best checkpoint)")
    return 0
