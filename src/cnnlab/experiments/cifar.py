"""Exercise 1: non-sequential CNNs on CIFAR-10.

    cnnlab cifar archs                                # the registered architectures
    cnnlab cifar summary --arch multipath             # layer table for a 3x32x32 input
    cnnlab cifar graph --arch multipath --out g.svg   # architecture graph
    cnnlab cifar train --arch residual --epochs 30    # one run -> runs/cifar/<name>/
    cnnlab cifar compare --preset quick [--seeds 3]   # Table 1
    cnnlab cifar evaluate runs/cifar/<name> --split train   # re-score the best checkpoint

From Python: ``train(build(CifarConfig, arch="multipath", epochs=2))`` returns the run folder.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from cnnlab import config as cfgmod
from cnnlab import files
from cnnlab.data import cifar10
from cnnlab.data.cache import fingerprint
from cnnlab.data.augment import Normalize
from cnnlab.data.loader import TensorLoader
from cnnlab.data.splits import Dataset, Split, subsets
from cnnlab.errors import ConfigError, TrainingDiverged
from cnnlab.experiments.common import (check_split_drawn_alike, diverged_runs_recorded, open_run, preset_run, read_compare_config,
                                       recorded_summary, run_or_reuse)
from cnnlab.experiments.configs import (ArchOptions, CifarConfig, CifarData, EvaluateOptions, GraphOptions,
                                        SeededCompareOptions)
from cnnlab.models import count_params, create_model, describe, list_models
from cnnlab.models.inspect import draw_graph, summary_text
from cnnlab.models.layers import init_from_data
from cnnlab.paths import runs_root
from cnnlab.registry import did_you_mean
from cnnlab.runs import best_checkpoint, environment, is_diverged, read_summary, write_summary
from cnnlab.train.checkpoint import chosen_row, load_model_weights
from cnnlab.train.classifier import ClassifierModule, accuracy, predict_logits
from cnnlab.train.engine import Length, fit, uses_cuda
from cnnlab.viz.comparisons import chosen_on, kept_last, shared_recipe, table1_row, table1_verdict
from cnnlab.viz.tables import write_table

EXERCISE = "cifar"
INPUT = (3, 32, 32)


def check_arch(arch: str) -> None:
    """Fail on an unknown architecture before any data is read (``ConfigError`` with the known ones)."""
    if arch not in list_models():
        raise ConfigError(f"arch: unknown architecture {arch!r}{did_you_mean(arch, list_models())}; "
                          f"known: {', '.join(list_models())}")


# ---- data --------------------------------------------------------------------------------------------


def make_splits(cfg: CifarData, seed: int) -> tuple[Dataset, tuple[str, ...]]:
    """The config's CIFAR-10 and the splits scored each epoch, the monitored one first.

    The training subset is drawn by ``seed``; the test subset and the val split (``val_fraction`` of
    ``limit_train``, class-balanced, see ``subsets``) by ``eval_seed``, so every seed is scored on the
    same images.
    Monitoring val scores val alone during training (test once, at the end); monitoring test also scores
    val each epoch when there is one, so the epoch val would have chosen is known; monitoring none scores
    nothing during training (the last epoch is the result, test scored once, at the end)."""
    data = subsets(cifar10.load(cfg.data_dir or None, cfg.data_root or None), limit_train=cfg.limit_train,
                   limit_test=cfg.limit_test, seed=seed, eval_seed=cfg.eval_seed, val_fraction=cfg.val_fraction)
    if cfg.monitor == "none":
        return data, ()
    if cfg.monitor == "val":
        return data, ("val",)
    return data, ("test", "val") if data.val is not None else ("test",)


def data_fingerprint(cfg: CifarConfig) -> str:
    """The fingerprint of the CIFAR-10 source ``cfg`` reads (as its run's summary records it)."""
    return fingerprint(cifar10.locate(cfg.data.data_dir or None, cfg.data.data_root or None))


def train_transform(cfg: CifarConfig) -> Normalize:
    return Normalize(cifar10.MEAN, cifar10.STD, crop_padding=cfg.data.crop_padding, crop_fill=cfg.data.crop_fill,
                     flip=cfg.data.flip and not cfg.data.alternating_flips, channels_last=cfg.hardware.channels_last)


def eval_transform(cfg: CifarConfig) -> Normalize:
    return Normalize(cifar10.MEAN, cifar10.STD, channels_last=cfg.hardware.channels_last)


def shift_views(cfg: CifarConfig, split: str) -> bool:
    """Whether ``split`` is scored with the shifted views too: the test split scored once at the end (the
    per-epoch scores, and so a test-chosen checkpoint's figure, keep the flip views, which cost a third)."""
    return cfg.shift_tta and split == "test" and cfg.data.monitor in ("val", "none")


def eval_batch_size(cfg: CifarConfig, on_gpu: bool | None = None) -> int:
    """``data.eval_batch_size``, or when 0 a size for the device of the pass (``on_gpu``; default: where the
    run trains): small batches on a CPU, whose caches large ones overflow (bench/eval_batch.py), large ones
    on a GPU."""
    on_gpu = uses_cuda(cfg.hardware.accelerator) if on_gpu is None else on_gpu
    return cfg.data.eval_batch_size or (1024 if on_gpu else 128)


def on_gpu(model: torch.nn.Module) -> bool:
    """Whether ``model``'s weights are on a GPU (the final scoring runs where ``best_model`` put them)."""
    return next(model.parameters()).is_cuda


def eval_loader(cfg: CifarConfig, split: Split, on_gpu: bool | None = None) -> TensorLoader:
    return TensorLoader(split.x, split.y, eval_batch_size(cfg, on_gpu), transform=eval_transform(cfg))


def train_loader(cfg: CifarConfig, train: Split) -> TensorLoader:
    """Shuffled, augmented batches of ``train``; flips come from the loader when they alternate by epoch
    (it knows each image's index), else from the transform."""
    batch = cfg.optim.batch_size
    return TensorLoader(train.x, train.y, batch, shuffle=True, drop_last=len(train) > batch,
                        transform=train_transform(cfg), seed=cfg.run.seed,
                        alternating_flips=cfg.data.flip and cfg.data.alternating_flips)


def loaders(cfg: CifarConfig, data: Dataset, eval_splits: tuple[str, ...]) -> tuple[TensorLoader, list[TensorLoader]]:
    return train_loader(cfg, data.train), [eval_loader(cfg, data.split(split)) for split in eval_splits]


# ---- one run -----------------------------------------------------------------------------------------


def build_model(arch: str, options: dict[str, Any]) -> torch.nn.Module:
    """The architecture with its options, for CIFAR-10's 10 classes (``ConfigError`` on an unknown option)."""
    check_arch(arch)
    return create_model(arch, num_classes=len(cifar10.CLASSES), **options)


def fit_to_data(model: torch.nn.Module, cfg: CifarConfig, train: Split, sample: int = 5000) -> None:
    """Data-initialised layers (the whitening stem of ``residual_fast``) see a seeded sample of train."""
    g = torch.Generator().manual_seed(cfg.run.seed)
    idx = torch.randperm(len(train), generator=g)[:sample]
    init_from_data(model, eval_transform(cfg)(train.x[idx]))


def write_model_files(model: torch.nn.Module, run_dir: Path) -> Path:
    files.write_text(run_dir / "model_summary.txt", summary_text(model, INPUT) + "\n")
    return draw_graph(model, INPUT, run_dir / "architecture.svg")


def callback_text(patience: int, split: str) -> str:
    if split == "none":
        return "checkpoint of the last epoch (no per-epoch evaluation)"
    text = f"checkpoint of the best {split}_acc (max)"
    if patience:
        text += f" + EarlyStopping({split}_acc, patience {patience})"
    return text


def train(cfg: CifarConfig) -> Path:
    """Train one architecture; returns its run folder (see ``cnnlab.runs``).

    Raises:
        ConfigError: unknown architecture or architecture option (before any data is read).
        DataError: missing or corrupt data. TrainingDiverged: a NaN loss (the run is recorded as diverged).
    """
    check_arch(cfg.arch)
    pl.seed_everything(cfg.run.seed, verbose=False)
    data, eval_splits = make_splits(cfg.data, cfg.run.seed)
    chose = bool(eval_splits)  # else nothing is scored while training: the last epoch is the result
    monitored = eval_splits[0] if chose else "none"
    model = build_model(cfg.arch, cfg.model)
    fit_to_data(model, cfg, data.train)
    run_dir = open_run(EXERCISE, cfg, cfg.run, data.fingerprint)
    graph = write_model_files(model, run_dir)
    module = ClassifierModule(model, cfg.optim, channels_last=cfg.hardware.channels_last, flip_tta=cfg.flip_tta,
                              eval_split=eval_splits, hparams=cfgmod.to_dict(cfg))
    train_loader, evaluation = loaders(cfg, data, eval_splits)
    started = time.perf_counter()
    length = Length(cfg.optim.epochs, cfg.optim.early_stopping_patience)
    with diverged_runs_recorded(run_dir, EXERCISE, count_params(model), arch=cfg.arch, architecture=describe(model)):
        result = fit(module, train_loader, evaluation or None, run_dir, cfg.run, cfg.hardware, length,
                     monitor=f"{monitored}_acc", mode="max")
    if not result.is_global_zero:
        return run_dir

    best = best_model(cfg, result.best_ckpt)
    precision = result.precision  # scored in the precision the Trainer used, as its evaluation was

    score_s: dict[str, float] = {}  # seconds each final pass took (the test one belongs to time-to-accuracy)

    def score(split: str) -> float:
        start = time.perf_counter()
        loader = eval_loader(cfg, data.split(split), on_gpu=on_gpu(best))
        acc = accuracy(*predict_logits(best, loader, flip_tta=cfg.flip_tta, shift_tta=shift_views(cfg, split),
                                       precision=precision))
        score_s[split] = time.perf_counter() - start
        return acc

    # One computation per number: the accuracy that chose best.ckpt is the one reported for it.
    scores = {"train_acc": score("train"),  # a clean eval-mode pass, no augmentation
              "test_acc": result.best_score if monitored == "test" else score("test")}
    optim = cfg.optim
    write_summary(run_dir, {
        "name": run_dir.name, "exercise": EXERCISE, "arch": cfg.arch,
        "architecture": describe(model), "params": count_params(model),
        "epochs": result.epochs, "best_epoch": result.best_epoch,
        "monitor": f"{monitored}_acc" if chose else "none",
        "best_monitored": result.best_score if chose else None, **scores,
        "val_chosen": val_chosen(run_dir, result, scores["test_acc"], monitored),
        "train_acc_source": "best checkpoint, clean eval pass",
        "callback": callback_text(optim.early_stopping_patience, monitored),
        "hyperparameters": {**recipe(cfg), "precision": precision, "precision_reason": result.precision_reason},
        "train_images": len(data.train), "test_images": len(data.test), "data_fingerprint": data.fingerprint,
        "val_images": len(data.val) if data.val is not None else 0,
        "wall_time_s": result.wall_time_s, "score_s": score_s, "total_time_s": time.perf_counter() - started,
        "graph": graph.name, "seed": cfg.run.seed, **environment(),
    })
    return run_dir


def recipe(cfg: CifarConfig) -> dict[str, Any]:
    """The settings that shape a run's training and scoring, as ``summary.json`` records them (Table 1's
    recipe line and hyper-parameter table read them): those that apply to it only, e.g. momentum for SGD."""
    optim, data = cfg.optim, cfg.data
    hp: dict[str, Any] = {"optimizer": optim.optimizer, "lr": optim.lr, "batch_size": optim.batch_size,
                          "weight_decay": optim.weight_decay, "schedule": optim.schedule}
    if optim.optimizer == "sgd":
        hp["momentum"] = optim.momentum
    if optim.schedule == "onecycle":
        hp.update(warmup=optim.warmup, warmup_from=optim.warmup_from, final_lr=optim.final_lr)
    hp.update(norm_lr_scale=optim.norm_lr_scale, decay_norms=optim.decay_norms, lookahead=optim.lookahead,
              label_smoothing=optim.label_smoothing, crop_padding=data.crop_padding)
    if data.crop_padding:
        hp["crop_fill"] = data.crop_fill
    hp["flip"] = data.flip
    if data.flip:
        hp["alternating_flips"] = data.alternating_flips
    hp.update(flip_tta=cfg.flip_tta, shift_tta=cfg.shift_tta, monitor=data.monitor)
    return hp


def val_chosen(run_dir: Path, result: Any, test_acc: float, monitored: str) -> dict[str, Any] | None:
    """The honest figure beside a checkpoint chosen on test: the epoch with the best val accuracy and
    the test accuracy of that epoch's weights (val alone chose it). None without a val split."""
    if monitored == "none":
        return None
    if monitored == "val":
        return {"epoch": result.best_epoch, "val_acc": result.best_score, "test_acc": test_acc}
    row = chosen_row(run_dir / "metrics.csv", "val_acc", "max")
    if row is None or "test_acc" not in row:
        return None
    return {"epoch": int(row["epoch"]), "val_acc": row["val_acc"], "test_acc": row["test_acc"]}


def best_model(cfg: CifarConfig, checkpoint: Path) -> torch.nn.Module:
    """The architecture of ``cfg`` with the weights of ``checkpoint``, in eval layout."""
    best = load_model_weights(build_model(cfg.arch, cfg.model), checkpoint)
    return best.to(memory_format=torch.channels_last) if cfg.hardware.channels_last else best


def evaluate_run(run_dir: str | Path, split: str = "test", data_dir: str = "", data_root: str = "") -> dict[str, Any]:
    """Re-score ``run_dir``'s best checkpoint on ``split`` (train and test as the run drew them; val when it
    monitored val), on its own data or on ``data_dir``/``data_root``.

    Returns:
        {"split", "images", "acc", "top5"}: accuracies as fractions in [0, 1].

    Raises:
        ConfigError: not a CIFAR-10 run folder, or no such split in the run. CheckpointError: best.ckpt unreadable.
    """
    run_dir = Path(run_dir)
    summary = recorded_summary(run_dir, EXERCISE)
    cfg = cfgmod.load(CifarConfig, run_dir / "config.yaml",
                      {k: v for k, v in {"data.data_dir": data_dir, "data.data_root": data_root}.items() if v})
    check_split_drawn_alike(summary, run_dir, split)
    data = make_splits(cfg.data, cfg.run.seed)[0]
    if split == "val" and data.val is None:
        raise ConfigError(f"{run_dir} has no val split (it was trained with val_fraction 0): use --split test or train")
    part = data.split(split)
    precision = summary.get("hyperparameters", {}).get("precision", "32-true")  # as summary.json was scored
    best = best_model(cfg, best_checkpoint(run_dir))
    logits, targets = predict_logits(best, eval_loader(cfg, part, on_gpu=on_gpu(best)),
                                     flip_tta=cfg.flip_tta, shift_tta=shift_views(cfg, split), precision=precision)
    return {"split": split, "images": len(part), "acc": accuracy(logits, targets), "top5": accuracy(logits, targets, k=5)}


# ---- Table 1 -----------------------------------------------------------------------------------------


def entry_config(defaults: dict[str, Any], entry: dict[str, Any], seed: int, overrides: dict[str, Any]) -> CifarConfig:
    """One run of a preset at ``seed`` (see ``preset_run``), its architecture checked."""
    cfg = preset_run(CifarConfig, defaults, entry, overrides, seed)
    check_arch(cfg.arch)
    return cfg


def planned_runs(options: SeededCompareOptions, overrides: dict[str, Any] | None = None) -> dict[str, list[CifarConfig]]:
    """Every run of the preset, by entry name, one per seed (checked, not trained): what ``compare`` does."""
    defaults, entries = read_compare_config(EXERCISE, options.preset)
    if options.runs_dir:
        defaults["run.runs_dir"] = options.runs_dir
    layers = cfgmod.merge(CifarConfig, cfgmod.flatten(CifarConfig, defaults), cfgmod.flatten(CifarConfig, overrides or {}))
    first_seed = int(layers.get("run.seed", 0))
    seeds = range(first_seed, first_seed + options.seeds)
    return {str(e["name"]): [entry_config(defaults, e, seed, overrides or {}) for seed in seeds] for e in entries}


def compare(options: SeededCompareOptions, overrides: dict[str, Any] | None = None) -> list[Path]:
    """Train (or reuse) every entry of a preset for each of ``options.seeds`` seeds (``overrides``, any
    config keys, apply to every run); write Table 1 as runs/cifar/table1.{md,csv,tex}."""
    configs = planned_runs(options, overrides)
    entries = []  # every config is checked above, before the first run trains
    for name, runs in configs.items():
        entries.append((name, [run_or_reuse(EXERCISE, cfg, train, data_fingerprint) for cfg in runs]))
    all_summaries = [s for _, summaries in entries for s in summaries]
    diverged = sum(is_diverged(s) for s in all_summaries)
    rows = [table1_row(name, summaries) for name, summaries in entries]
    stem = runs_root(next(iter(configs.values()))[0].run.runs_dir or None) / EXERCISE / "table1"
    caption = ("Table 1: CIFAR-10 architectures" + (f" (mean ± std over {options.seeds} seeds)" if options.seeds > 1 else "")
               + f"; {chosen_on([s for s in all_summaries])}")
    outputs = write_table(rows, stem, caption=caption)
    files.write_text(outputs[0], outputs[0].read_text()
                     + f"\n{shared_recipe(all_summaries)}\n\n{table1_verdict(entries)[0]}\n")
    print(outputs[0].read_text())
    if diverged:
        raise TrainingDiverged(f"{diverged} run(s) diverged; Table 1 shows them as diverged ({outputs[0]})")
    return outputs


# ---- the commands (see cnnlab.cli) -----------------------------------------------------------------


def cmd_archs() -> int:
    for name in list_models():
        model = create_model(name)
        print(f"{name:<14} {count_params(model):>10,} params  {describe(model)[:110]}")
    return 0


def cmd_summary(options: ArchOptions) -> int:
    print(summary_text(build_model(options.arch, options.model), INPUT))
    return 0


def cmd_graph(options: GraphOptions) -> int:
    print(draw_graph(build_model(options.arch, options.model), INPUT, options.out, depth=options.depth))
    return 0


def cmd_train(cfg: CifarConfig) -> int:
    run_dir = train(cfg)
    if (run_dir / "summary.json").is_file():
        s = read_summary(run_dir)
        honest = s.get("val_chosen") if s["monitor"] == "test_acc" else None
        also = (f"; epoch chosen on val: {s['val_chosen']['epoch']}, test acc {100 * honest['test_acc']:.1f}%"
                if honest else "")
        epoch = f"{s['epochs']} epochs" if kept_last(s) else f"best epoch {s['best_epoch']} of {s['epochs']}"
        print(f"{run_dir}: train acc {100 * s['train_acc']:.1f}%, test acc {100 * s['test_acc']:.1f}% "
              f"({epoch}, {chosen_on([s])}{also}; {s['wall_time_s']:.0f} s)")
    return 0


def cmd_compare(options: SeededCompareOptions, overrides: dict[str, Any]) -> int:
    outputs = compare(options, overrides)
    print(f"Table 1: {outputs[0]} (also .csv, .tex)")
    return 0


def cmd_evaluate(options: EvaluateOptions) -> int:
    r = evaluate_run(options.run_dir, options.split, options.data_dir, options.data_root)
    print(f"{options.run_dir}: {r['split']} accuracy {100 * r['acc']:.1f}% (top-5 {100 * r['top5']:.1f}%) "
          f"on {r['images']} images (best.ckpt: the chosen epoch, or the last where none was chosen)")
    return 0
