"""Exercise 3: autoencoders on notMNIST (letters A-J, 28x28 grey).

    cnnlab notmnist ae       --code-dim 32 [--epochs 50] [--data-dir PATH]   # shallow dense autoencoder
    cnnlab notmnist ae-sweep --dims 8,16,32,64,128                           # impact of the code size
    cnnlab notmnist svm      [--features raw,ae,pca] [--ae-run runs/notmnist/dense-ae-32-s0]
    cnnlab notmnist denoise  [--noise gaussian:0.5] [--epochs 10]             # convolutional denoising AE
    cnnlab notmnist summary  --model conv-dae                                 # layer table, output shapes

``ae`` and ``denoise`` write run folders (``runs/notmnist/<name>/``: config.yaml, metrics.csv,
checkpoints/, summary.json, figures/*.png, tables). ``ae-sweep`` reuses or trains one ``ae`` run per code
size and writes ``runs/notmnist/<sweep name>.{md,csv,tex,png}``; ``svm`` writes its table into its own run
folder. From Python: ``train_ae(AEConfig(code_dim=32))`` and ``denoise(DenoiseConfig())`` return the
run folder.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch

from cnnlab import files
from cnnlab import config as cfgmod
from cnnlab.config import field
from cnnlab.data.loader import TensorLoader, class_balanced_indices
from cnnlab.data.noise import NoiseTransform, noisy_copy, parse_noise
from cnnlab.data.notmnist import as_float, load_notmnist
from cnnlab.errors import ConfigError
from cnnlab.experiments.common import (add_config_file_flag, command_group, diverged_runs_recorded, open_run,
                                       parse_key_values,
                                       resolve_config, reuse_or_resume)
from cnnlab.experiments.notmnist_svm import FEATURES, FeatureInputs, SvmGrid, svm_table
from cnnlab.experiments.compression import compression_table
from cnnlab.metrics import quality
from cnnlab.models.autoencoders import (AUTOENCODERS, code_size_line, create_autoencoder, describe_autoencoder,
                                        list_autoencoders, parameter_bytes)
from cnnlab.models.describe import describe
from cnnlab.models.registry import count_params
from cnnlab.paths import runs_root
from cnnlab.viz import autoencoder_figures as figures
from cnnlab.viz.tables import write_table
from cnnlab.train.autoencoder import (AutoencoderModule, AutoencoderTrainConfig, cpu_threads, encode_all,
                                      reconstruct)
from cnnlab.train.engine import fit, load_model_weights, resolve_precision
from cnnlab.runs import environment, new_run_dir, read_summary, write_summary

EXERCISE = "notmnist"
FIGURE_IMAGES = 10  # test images shown in each figure


# ---- configs -----------------------------------------------------------------------------------------


@dataclass
class NotMnistData:
    """Where the data comes from and how much of it to use (subsets are for smoke tests)."""

    data_dir: str = field("", "folder with the four notMNIST idx .gz files (default: data root, else download)")
    data_root: str = field("", "folder in which datasets are looked up (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    limit_train: int = field(0, "class-balanced subset of the training images (0: all)")
    limit_test: int = field(0, "class-balanced subset of the test images (0: all)")
    eval_batch_size: int = field(1000, "images per batch when evaluating")


@dataclass
class AEConfig(AutoencoderTrainConfig, NotMnistData):
    """The lab's shallow dense autoencoder: BCE, Adam, batch 256, 50 epochs."""

    epochs: int = field(50, "training epochs")
    lr: float = field(1.3e-3, "Adam learning rate (1.3e-3 measured best for 50 epochs; higher kills ReLU code units)")
    precision: str = field("32-true", "32-true (the dense AE's matrices are too small for bf16 to pay), bf16-mixed, auto")
    code_dim: int = field(32, "code size: units of the hidden layer")

    def __post_init__(self) -> None:
        if self.code_dim < 1:
            raise ConfigError(f"code_dim: must be at least 1, got {self.code_dim}")
        if not self.name:
            self.name = f"dense-ae-{self.code_dim}-s{self.seed}"


@dataclass
class SweepConfig(AEConfig):
    dims: list[int] = field([8, 16, 32, 64, 128], "code sizes to train, comma separated")

    def __post_init__(self) -> None:
        self.name = self.name or "ae-sweep"  # the sweep's table and plot: runs/notmnist/<name>.{md,png}
        super().__post_init__()
        if not self.dims:
            raise ConfigError("dims: give at least one code size")


@dataclass
class SvmConfig(AEConfig):
    """SVMs on raw pixels, on the codes of a dense autoencoder (trained here unless --ae-run is given),
    and on PCA with the code's size. The autoencoder fields (code_dim, epochs, ...) describe that AE."""

    features: list[str] = field(["raw", "ae", "pca"], "feature kinds, comma separated: raw, ae, pca")
    ae_run: str = field("", "run folder of `cnnlab notmnist ae` whose encoder gives the codes (default: train or reuse one)")
    c_values: list[float] = field([1.0, 10.0], "SVM C values tried by the grid search")
    gamma_scales: list[float] = field([0.5, 1.0, 2.0], "gamma values tried, as multiples of 1 / (dims * variance)")
    cv_samples: int = field(2000, "class-balanced training subsample used by the grid search")
    cv_folds: int = field(3, "cross-validation folds of the grid search")

    def __post_init__(self) -> None:
        self.name = self.name or "svm"
        super().__post_init__()
        for kind in self.features:
            FEATURES.get(kind)


@dataclass
class DenoiseConfig(AutoencoderTrainConfig, NotMnistData):
    """The lab's convolutional denoising autoencoder: MSE, Adam, batch 128, 10 epochs."""

    epochs: int = field(10, "training epochs")
    batch_size: int = field(128, "images per batch (per device)")
    loss: Literal["bce", "mse"] = field("mse", "reconstruction loss: mean squared error or binary cross-entropy")
    model: str = field("conv-dae", "registered autoencoder (see `cnnlab notmnist summary --help`)")
    noise: str = field("gaussian:0.5", "KIND:AMOUNT, gaussian:FACTOR (clipped to [0, 1]) or saltpepper:FRACTION")
    test_noise_seed: int = field(1234, "seed of the fixed noise on the test images")

    def __post_init__(self) -> None:
        parse_noise(self.noise)
        AUTOENCODERS.get(self.model)  # an unknown name fails here, listing the known ones
        if not self.name:
            self.name = f"{self.model}-{self.noise.replace(':', '')}-s{self.seed}"


# ---- data --------------------------------------------------------------------------------------------


@dataclass
class Images:
    """Float images (N, 1, 28, 28) in [0, 1] and their labels (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _subset(x: torch.Tensor, y: torch.Tensor, limit: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not limit or limit >= len(y):
        return x, y
    idx = class_balanced_indices(y, limit, seed=seed)
    return x[idx], y[idx]


def load_images(cfg: NotMnistData, seed: int = 0) -> Images:
    data = load_notmnist(cfg.data_dir or None, cfg.data_root or None)
    x_train, y_train = _subset(data.x_train, data.y_train, cfg.limit_train, seed)
    x_test, y_test = _subset(data.x_test, data.y_test, cfg.limit_test, seed)
    return Images(as_float(x_train), y_train, as_float(x_test), y_test)


# ---- shared by ae and denoise ------------------------------------------------------------------------


def _fit_autoencoder(model, cfg, run_dir: Path, train_loader, eval_loader):
    """Train with the engine; returns (FitResult, the model with the best checkpoint's weights)."""
    files.write_text(run_dir / "model_summary.txt", describe_autoencoder(model) + "\n")
    module = AutoencoderModule(model, cfg, hparams=cfgmod.to_dict(cfg))
    with diverged_runs_recorded(run_dir, EXERCISE, count_params(model)):
        result = fit(module, train_loader, eval_loader, run_dir, cfg, monitor="test_loss", mode="min")
    best = load_model_weights(module.model, result.best_ckpt) if result.best_ckpt.is_file() else module.model
    return result, best.cpu().eval()  # evaluation, figures and tables run on the CPU tensors


def _run_summary(run_dir: Path, cfg, model, result, scores: dict, **extra) -> dict:
    return {"name": run_dir.name, "exercise": EXERCISE, "model": getattr(cfg, "model", "dense-ae"),
            "architecture": describe(model), "params": count_params(model),
            "epochs": result.epochs, "best_epoch": result.best_epoch, "monitor": "test_loss",
            "best_monitored": result.best_score, **scores, "wall_time_s": result.wall_time_s,
            "seconds_per_epoch": result.wall_time_s / max(result.epochs, 1),
            "hyperparameters": {"loss": cfg.loss, "optimizer": "adam", "lr": cfg.lr, "batch_size": cfg.batch_size,
                                "precision": result.precision, "precision_reason": result.precision_reason},
            **extra, "seed": cfg.seed, **environment()}


# ---- ae: the shallow dense autoencoder -------------------------------------------------------------


def train_ae(cfg: AEConfig) -> Path:
    """Train one dense autoencoder; returns its run folder (see ``cnnlab.runs``)."""
    with cpu_threads(cfg.threads):
        return _train_ae(cfg)


def _train_ae(cfg: AEConfig) -> Path:
    pl.seed_everything(cfg.seed, verbose=False)
    images = load_images(cfg, cfg.seed)
    model = create_autoencoder("dense-ae", code_dim=cfg.code_dim)
    run_dir = open_run(EXERCISE, cfg)
    train_loader = TensorLoader(images.x_train, images.x_train, cfg.batch_size, shuffle=True, seed=cfg.seed)
    eval_loader = TensorLoader(images.x_test, images.x_test, cfg.eval_batch_size)
    result, best = _fit_autoencoder(model, cfg, run_dir, train_loader, eval_loader)
    if not result.is_global_zero:
        return run_dir

    x_test = images.x_test
    reconstruction = reconstruct(best, x_test)
    q = quality(reconstruction, x_test)
    scores = {"test_mse": q["mse"], "test_psnr": q["psnr_db"], "test_ssim": q["ssim"]}
    shown = x_test[:FIGURE_IMAGES]
    figures.image_rows([("input", shown), ("reconstruction", reconstruction[:FIGURE_IMAGES])],
                       run_dir / "figures" / "reconstructions.png", title=f"dense autoencoder, code {cfg.code_dim}")
    figures.code_tiles(encode_all(best, shown), run_dir / "figures" / "codes.png")
    rows, one_off = compression_table(best, x_test, images.x_train[:2000])
    write_table(rows, run_dir / "compression",
                caption=f"Compression, first {one_off['compression_images']} test images; "
                        f"decoder {one_off['decoder_bytes_float32']:,} bytes (float32) shipped once")
    write_summary(run_dir, _run_summary(run_dir, cfg, best, result, scores, code_dim=cfg.code_dim,
                                        compression=rows, **one_off, train_images=len(images.x_train),
                                        test_images=len(x_test)))
    return run_dir


def ae_config(cfg: AEConfig, **changes) -> AEConfig:
    """The plain ``AEConfig`` inside a sweep or SVM config (their extra fields dropped)."""
    values = {f.name: getattr(cfg, f.name) for f in fields(AEConfig)}
    values.update(name="", force=False, resume=False)
    values.update(changes)
    return AEConfig(**values)


def trained_ae(cfg: AEConfig) -> Path:
    """A finished run of ``cfg``: reused when one exists, resumed when one was interrupted."""
    cfg, finished = reuse_or_resume(EXERCISE, cfg)
    if finished is not None:
        print(f"cnnlab: reusing finished run {finished}")
        return finished
    return train_ae(cfg)


# ---- ae-sweep ----------------------------------------------------------------------------------------


def sweep(cfg: SweepConfig) -> list[Path]:
    """One dense AE per code size (reused when already trained); table and plot of loss and PSNR."""
    rows = []
    for dim in cfg.dims:
        run_dir = trained_ae(ae_config(cfg, code_dim=dim))
        s = read_summary(run_dir)
        rows.append({"code_dim": dim, "bytes_float32": 4 * dim, "test_loss": s["best_monitored"],
                     "test_mse": s["test_mse"], "test_psnr": s["test_psnr"], "test_ssim": s["test_ssim"],
                     "params": s["params"], "epochs": s["epochs"], "run": run_dir.name})
    stem = runs_root(cfg.runs_dir or None) / EXERCISE / cfg.name
    outputs = write_table(rows, stem, caption=f"Dense autoencoder: code size vs test loss ({cfg.loss}) and PSNR")
    outputs.append(figures.sweep_plot(rows, stem.with_suffix(".png")))
    print(outputs[0].read_text())
    return outputs


# ---- svm ---------------------------------------------------------------------------------------------


def svm(cfg: SvmConfig) -> Path:
    """SVMs on pixels, AE codes and PCA; writes the table into a run folder and returns it."""
    with cpu_threads(cfg.threads):
        return _svm(cfg)


def _svm(cfg: SvmConfig) -> Path:
    images = load_images(cfg, cfg.seed)
    autoencoder, ae_run = None, ""
    if "ae" in cfg.features:
        ae_run = Path(cfg.ae_run) if cfg.ae_run else trained_ae(ae_config(cfg))
        ae_cfg = cfgmod.load(AEConfig, Path(ae_run) / "config.yaml")
        autoencoder = load_model_weights(create_autoencoder("dense-ae", code_dim=ae_cfg.code_dim),
                                         Path(ae_run) / "checkpoints" / "best.ckpt")
    run_dir = new_run_dir(EXERCISE, cfg.name, runs_dir=cfg.runs_dir or None, force=cfg.force)
    cfgmod.save(cfg, run_dir / "config.yaml")
    code_size = autoencoder.code_size if autoencoder is not None else cfg.code_dim
    grid = SvmGrid(cfg.c_values, cfg.gamma_scales, cfg.cv_samples, cfg.cv_folds, cfg.seed)
    started = time.perf_counter()
    rows = svm_table(cfg.features, FeatureInputs(images.x_train, images.x_test, autoencoder, code_size),
                     images.y_train, images.y_test, grid)
    outputs = write_table(rows, run_dir / "svm", caption=f"RBF SVM on notMNIST: {len(images.x_train)} train, "
                                                         f"{len(images.x_test)} test images")
    # Not a training run, so not the training summary contract: kind says what it is.
    files.write_text(run_dir / "summary.json", json.dumps({
        "name": run_dir.name, "exercise": EXERCISE, "kind": "svm", "ae_run": str(ae_run), "rows": rows,
        "wall_time_s": time.perf_counter() - started, "train_images": len(images.x_train),
        "test_images": len(images.x_test), "seed": cfg.seed, **environment()}, indent=2))
    print(outputs[0].read_text())
    return run_dir


# ---- denoise: the convolutional denoising autoencoder ------------------------------------------------


def denoise(cfg: DenoiseConfig) -> Path:
    """Train the denoising autoencoder on fresh noise each epoch; score it on fixed test noise."""
    with cpu_threads(cfg.threads):
        return _denoise(cfg)


def _denoise(cfg: DenoiseConfig) -> Path:
    pl.seed_everything(cfg.seed, verbose=False)
    images = load_images(cfg, cfg.seed)
    spec = parse_noise(cfg.noise)
    noisy_test = noisy_copy(images.x_test, spec, seed=cfg.test_noise_seed)
    model = create_autoencoder(cfg.model)
    run_dir = open_run(EXERCISE, cfg)
    train_loader = TensorLoader(images.x_train, images.x_train, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                transform=NoiseTransform(spec))  # (noisy, clean) pairs, new noise every epoch
    eval_loader = TensorLoader(noisy_test, images.x_test, cfg.eval_batch_size)
    result, best = _fit_autoencoder(model, cfg, run_dir, train_loader, eval_loader)
    if not result.is_global_zero:
        return run_dir

    denoised = reconstruct(best, noisy_test)
    noisy, cleaned = quality(noisy_test, images.x_test), quality(denoised, images.x_test)
    scores = {"test_mse": cleaned["mse"], "test_psnr": cleaned["psnr_db"], "test_ssim": cleaned["ssim"],
              "noisy_mse": noisy["mse"], "noisy_psnr": noisy["psnr_db"], "noisy_ssim": noisy["ssim"],
              "psnr_gain_db": cleaned["psnr_db"] - noisy["psnr_db"]}
    n = FIGURE_IMAGES
    figures.image_rows([("noisy", noisy_test[:n]), ("denoised", denoised[:n]), ("clean", images.x_test[:n])],
                       run_dir / "figures" / "denoising.png", title=f"{cfg.model}, noise {spec}")
    write_table([{"images": "noisy vs clean", **noisy}, {"images": "denoised vs clean", **cleaned}],
                run_dir / "denoising", caption=f"Denoising, noise {spec}, {len(noisy_test)} test images")
    write_summary(run_dir, _run_summary(run_dir, cfg, best, result, scores, noise=str(spec),
                                        code=code_size_line(best), decoder_bytes_float32=parameter_bytes(best.decoder),
                                        train_images=len(images.x_train), test_images=len(images.x_test)))
    return run_dir


# ---- command line ------------------------------------------------------------------------------------


def _print_result(run_dir: Path) -> None:
    s = read_summary(run_dir)
    gain = f", gain {s['psnr_gain_db']:+.1f} dB over the noisy input" if "psnr_gain_db" in s else ""
    print(f"{run_dir}: test MSE {s['test_mse']:.4f}, PSNR {s['test_psnr']:.2f} dB{gain} "
          f"(best epoch {s['best_epoch']} of {s['epochs']}, {s['wall_time_s']:.0f} s)")


def cmd_ae(args: argparse.Namespace) -> int:
    run_dir = train_ae(resolve_config(AEConfig, args))
    if (run_dir / "summary.json").is_file():
        _print_result(run_dir)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    sweep(resolve_config(SweepConfig, args))
    return 0


def cmd_svm(args: argparse.Namespace) -> int:
    run_dir = svm(resolve_config(SvmConfig, args))
    print(f"{run_dir}: SVM table in {run_dir / 'svm.md'} (also .csv, .tex)")
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    run_dir = denoise(resolve_config(DenoiseConfig, args))
    if (run_dir / "summary.json").is_file():
        _print_result(run_dir)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    options = parse_key_values(args.model_opt, "--model-opt")
    try:
        model = create_autoencoder(args.model, **options)
    except TypeError as e:
        raise ConfigError(f"--model-opt: {args.model} does not take {', '.join(options)} ({e})") from None
    print(describe_autoencoder(model))
    return 0


def add_commands(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    cmds = command_group(sub, name, help_text, __doc__)

    for command, cls, func, help_line in (
        ("ae", AEConfig, cmd_ae, "train the shallow dense autoencoder into runs/notmnist/<name>/"),
        ("ae-sweep", SweepConfig, cmd_sweep, "train (or reuse) one dense autoencoder per code size; table and plot"),
        ("svm", SvmConfig, cmd_svm, "SVM test accuracy on raw pixels vs autoencoder codes vs PCA"),
        ("denoise", DenoiseConfig, cmd_denoise, "train the convolutional denoising autoencoder"),
    ):
        p = cmds.add_parser(command, help=help_line, description=cls.__doc__)
        add_config_file_flag(p)
        cfgmod.add_config_flags(p, cls)
        p.set_defaults(func=func)

    p = cmds.add_parser("summary", help="layer table with output shapes (input 1x28x28) and the code size")
    p.add_argument("--model", default="conv-dae", choices=list_autoencoders(), help="autoencoder [default: conv-dae]")
    p.add_argument("--model-opt", action="append", metavar="KEY=VALUE", help="builder option, e.g. code_dim=64")
    p.set_defaults(func=cmd_summary)

