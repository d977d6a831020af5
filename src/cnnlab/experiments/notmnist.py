"""Exercise 3: autoencoders on notMNIST (letters A-J, 28x28 grey).

    cnnlab notmnist ae       --code-dim 32 [--epochs 50] [--data-dir PATH]   # shallow dense autoencoder
    cnnlab notmnist ae-sweep --dims 8,16,32,64,128                           # impact of the code size
    cnnlab notmnist svm      [--features raw,ae,pca] [--ae-run runs/notmnist/dense-ae-32-s0]
    cnnlab notmnist denoise  [--noise gaussian:0.5] [--epochs 10]             # convolutional denoising AE
    cnnlab notmnist summary  --model conv-dae                                 # layer table, output shapes
    cnnlab notmnist evaluate runs/notmnist/<name>                             # re-score the best checkpoint

``ae`` and ``denoise`` write run folders (``runs/notmnist/<name>/``: config.yaml, metrics.csv,
checkpoints/, summary.json, figures/*.png, tables). ``ae-sweep`` reuses or trains one ``ae`` run per code
size and writes ``runs/notmnist/<sweep name>.{md,csv,tex,png}``; ``svm`` writes its table into its own run
folder. From Python: ``train_ae(build(AEConfig, code_dim=32))`` and ``denoise(build(DenoiseConfig))`` return
the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from cnnlab import config as cfgmod
from cnnlab import files
from cnnlab.data.loader import TensorLoader
from cnnlab.data.noise import NoiseTransform, noisy_copy, parse_noise
from cnnlab.data import notmnist
from cnnlab.data.notmnist import as_float
from cnnlab.data.splits import Dataset, Split, subsets
from cnnlab.errors import ConfigError
from cnnlab.experiments.common import (HOW_NOT_WHAT, check_split_drawn_alike, config_changes, diverged_runs_recorded, open_run,
                                       recorded_summary, reused, same_run, trained)
from cnnlab.experiments.compression import compression_caption, compression_table
from cnnlab.experiments.configs import (AEConfig, AutoencoderOptions, DenoiseConfig, EvaluateOptions, NotMnistData,
                                        SvmConfig, SweepConfig, TableRun)
from cnnlab.experiments.notmnist_svm import FEATURES, FeatureInputs, SvmGrid, svm_table
from cnnlab.metrics import quality
from cnnlab.models.autoencoders import (AUTOENCODERS, IMAGE_SHAPE, code_size_line, create_autoencoder, describe_autoencoder,
                                        parameter_bytes)
from cnnlab.models.describe import describe
from cnnlab.models.registry import count_params
from cnnlab.paths import runs_root
from cnnlab.train.options import RunOptions
from cnnlab.runs import best_checkpoint, environment, is_finished, new_run_dir, read_summary, write_summary
from cnnlab.train.autoencoder import AutoencoderModule, encode_all, reconstruct_scored
from cnnlab.train.checkpoint import load_model_weights
from cnnlab.train.engine import Length, cpu_threads, fit
from cnnlab.viz import autoencoder_figures as figures
from cnnlab.viz.tables import write_table

EXERCISE = "notmnist"
FIGURE_IMAGES = 10  # test images shown in each figure


# ---- data --------------------------------------------------------------------------------------------


def load_images(cfg: NotMnistData, seed: int = 0, *, val: bool = True) -> Dataset:
    """The config's notMNIST with images as floats (N, 1, 28, 28) in [0, 1]: the training subset drawn by
    ``seed``, the test subset and (with ``val`` and ``val_fraction``) the val split by ``eval_seed``."""
    data = subsets(notmnist.load(cfg.data_dir or None, cfg.data_root or None), limit_train=cfg.limit_train,
                   limit_test=cfg.limit_test, seed=seed, eval_seed=cfg.eval_seed,
                   val_fraction=cfg.val_fraction if val else 0.0)

    def scaled(split: Split | None) -> Split | None:
        return None if split is None else Split(as_float(split.x), split.y)

    return dataclasses.replace(data, train=scaled(data.train), test=scaled(data.test), val=scaled(data.val))


def data_fingerprint(cfg: AEConfig | DenoiseConfig | SvmConfig) -> str:
    """The fingerprint of the notMNIST files ``cfg`` reads (as its run's summary records it)."""
    return notmnist.load(cfg.data.data_dir or None, cfg.data.data_root or None).fingerprint


def monitored(images: Dataset) -> str:
    """The split whose loss picks best.ckpt: val when one is held out, else test."""
    return "val" if images.val is not None else "test"


# ---- shared by ae and denoise ------------------------------------------------------------------------


def _fit_autoencoder(model, cfg: AEConfig | DenoiseConfig, run_dir: Path, train_loader, eval_loader, split: str):
    """Train with the engine, ``split``'s loss picking best.ckpt; returns (FitResult, the model with the
    best checkpoint's weights)."""
    files.write_text(run_dir / "model_summary.txt", describe_autoencoder(model) + "\n")
    module = AutoencoderModule(model, cfg.optim, channels_last=cfg.hardware.channels_last, eval_split=split,
                               hparams=cfgmod.to_dict(cfg))
    length = Length(cfg.optim.epochs, cfg.optim.early_stopping_patience)
    with diverged_runs_recorded(run_dir, EXERCISE, count_params(model)):
        result = fit(module, train_loader, eval_loader, run_dir, cfg.run, cfg.hardware, length,
                     monitor=f"{split}_loss", mode="min")
    best = load_model_weights(module.model, result.best_ckpt) if result.best_ckpt.is_file() else module.model
    return result, best.cpu().eval()  # evaluation, figures and tables run on the CPU tensors


def _run_summary(run_dir: Path, cfg: AEConfig | DenoiseConfig, model, result, scores: dict, **extra) -> dict:
    with torch.no_grad():
        output_shape = list(model(torch.zeros(1, *IMAGE_SHAPE)).shape[1:])
    return {"name": run_dir.name, "exercise": EXERCISE, "model": getattr(cfg, "model", "dense-ae"),
            "input_shape": list(IMAGE_SHAPE), "output_shape": output_shape,
            "encoder_params": count_params(model.encoder), "decoder_params": count_params(model.decoder),
            "architecture": describe(model), "params": count_params(model),
            "epochs": result.epochs, "best_epoch": result.best_epoch, "monitor": result.monitor,
            "best_monitored": result.best_score, **scores, "wall_time_s": result.wall_time_s,
            "seconds_per_epoch": result.wall_time_s / max(result.epochs, 1),
            "hyperparameters": {"loss": cfg.optim.loss, "optimizer": "adam", "lr": cfg.optim.lr,
                                "batch_size": cfg.optim.batch_size, "precision": result.precision,
                                "precision_reason": result.precision_reason},
            **extra, "seed": cfg.run.seed, **environment()}


# ---- ae: the shallow dense autoencoder -------------------------------------------------------------


def train_ae(cfg: AEConfig) -> Path:
    """Train one dense autoencoder; returns its run folder (see ``cnnlab.runs``)."""
    with cpu_threads(cfg.threads):
        return _train_ae(cfg)


def _train_ae(cfg: AEConfig) -> Path:
    pl.seed_everything(cfg.run.seed, verbose=False)
    images = load_images(cfg.data, cfg.run.seed)
    model = create_autoencoder("dense-ae", code_dim=cfg.code_dim)
    run_dir = open_run(EXERCISE, cfg, cfg.run, images.fingerprint)
    train_loader = TensorLoader(images.train.x, images.train.x, cfg.optim.batch_size, shuffle=True, seed=cfg.run.seed)
    split = monitored(images)
    eval_x = images.split(split).x
    eval_loader = TensorLoader(eval_x, eval_x, cfg.data.eval_batch_size)
    result, best = _fit_autoencoder(model, cfg, run_dir, train_loader, eval_loader, split)
    if not result.is_global_zero:
        return run_dir

    x_test = images.test.x
    reconstruction, test_loss = reconstruct_scored(best, x_test, x_test, cfg.optim.loss)
    q = quality(reconstruction, x_test)
    scores = {"test_loss": test_loss,
              "test_mse": q["mse"], "test_psnr": q["psnr_db"], "test_ssim": q["ssim"]}
    shown = x_test[:FIGURE_IMAGES]
    figures.image_rows([("input", shown), ("reconstruction", reconstruction[:FIGURE_IMAGES])],
                       run_dir / "figures" / "reconstructions.png", title=f"dense autoencoder, code {cfg.code_dim}")
    figures.code_tiles(encode_all(best, shown), run_dir / "figures" / "codes.png")
    rows, one_off = compression_table(best, x_test, images.train.x[:2000])
    write_table(rows, run_dir / "compression",
                caption=compression_caption(one_off))
    write_summary(run_dir, _run_summary(run_dir, cfg, best, result, scores, code_dim=cfg.code_dim,
                                        compression=rows, **one_off, train_images=len(images.train.x),
                                        val_images=len(images.val) if images.val is not None else 0,
                                        data_fingerprint=images.fingerprint,
                                        test_images=len(x_test)))
    return run_dir


def member_run(table: TableRun) -> RunOptions:
    """The run options of an ``ae`` run that a table (sweep, SVM) trains: its folder named by the scheme."""
    return RunOptions(runs_dir=table.runs_dir, seed=table.seed, logger=table.logger, progress=table.progress)


def sweep_member(cfg: SweepConfig, code_dim: int) -> AEConfig:
    """The ``ae`` run of one code size of a sweep: the sweep's parts, its own default name."""
    return AEConfig(code_dim=code_dim, threads=cfg.threads, hardware=cfg.hardware, optim=cfg.optim, data=cfg.data,
                    run=member_run(cfg.run))


def trained_ae(cfg: AEConfig) -> Path:
    """A finished run of ``cfg``: reused when one exists, resumed when one was interrupted."""
    return trained(EXERCISE, cfg, train_ae, data_fingerprint)


# ---- ae-sweep ----------------------------------------------------------------------------------------


def sweep(cfg: SweepConfig) -> list[Path]:
    """One dense AE per code size (reused when already trained); table and plot of loss and PSNR."""
    rows = []
    for dim in cfg.dims:
        run_dir = trained_ae(sweep_member(cfg, dim))
        s = read_summary(run_dir)
        rows.append({"code_dim": dim, "bytes_float32": 4 * dim, "test_loss": s.get("test_loss", s["best_monitored"]),
                     "test_mse": s["test_mse"], "test_psnr": s["test_psnr"], "test_ssim": s["test_ssim"],
                     "params": s["params"], "epochs": s["epochs"], "run": run_dir.name})
    stem = runs_root(cfg.run.runs_dir or None) / EXERCISE / cfg.run.name
    outputs = write_table(rows, stem, caption=f"Dense autoencoder: code size vs test loss ({cfg.optim.loss}) and PSNR")
    outputs.append(figures.sweep_plot(rows, stem.with_suffix(".png")))
    print(outputs[0].read_text())
    return outputs


# ---- svm ---------------------------------------------------------------------------------------------


def svm(cfg: SvmConfig) -> Path:
    """SVMs on pixels, AE codes and PCA; writes the table into a run folder and returns it."""
    with cpu_threads(cfg.threads):
        return _svm(cfg)


def svm_autoencoder(cfg: SvmConfig) -> Path:
    """The ``ae`` run whose encoder gives the codes: ``ae_run``; else a finished ``notmnist ae`` run of
    ``code_dim`` on the same data (config and fingerprint) and seed, however it was trained (the newest);
    else the default ``notmnist ae`` of ``code_dim``, trained now."""
    if cfg.ae_run:
        return Path(cfg.ae_run)
    wanted = AEConfig(code_dim=cfg.code_dim, threads=cfg.threads, data=cfg.data,
                      run=member_run(cfg.run))
    how_trained = tuple(k for k in cfgmod.leaves(AEConfig) if k.startswith(("optim.", "hardware."))) + ("threads",)
    base = runs_root(cfg.run.runs_dir or None) / EXERCISE
    same_data = data_fingerprint(cfg)
    found = [p for p in base.glob(f"dense-ae-{cfg.code_dim}-*") if is_finished(p)
             and config_changes(wanted, p, ignore=HOW_NOT_WHAT + how_trained) == {}
             and read_summary(p).get("data_fingerprint") == same_data]
    if found:
        newest = max(found, key=lambda p: (p / "summary.json").stat().st_mtime)
        print(f"cnnlab: the codes come from the finished run {newest}")
        return newest
    return trained_ae(wanted)


def finished_table(cfg: Any) -> Path | None:
    """A finished table run (``svm``, ``features``) of the same config on the same data, if one exists
    (table runs are reused like trained ones)."""
    base = runs_root(cfg.run.runs_dir or None) / EXERCISE
    found = [p for p in sorted(base.glob(f"{cfg.run.name}*")) if is_finished(p) and same_run(cfg, p)]
    if not found:
        return None
    wanted = data_fingerprint(cfg)
    return next((p for p in found if read_summary(p).get("data_fingerprint") == wanted), None)


def svm_or_reuse(cfg: SvmConfig) -> Path:
    """The run folder of ``cfg``'s SVM table: a finished one of the same config, else made now."""
    return reused(finished_table(cfg), lambda: svm(cfg))


def _svm(cfg: SvmConfig) -> Path:
    for kind in cfg.features:
        FEATURES.get(kind)  # a typo fails before any data is read
    images = load_images(cfg.data, cfg.run.seed, val=False)  # the SVM's own CV folds choose its settings
    autoencoder, ae_run = None, ""
    if "ae" in cfg.features:
        ae_run = svm_autoencoder(cfg)
        ae_cfg = cfgmod.load(AEConfig, ae_run / "config.yaml")  # earlier versions' files read too
        autoencoder = load_model_weights(create_autoencoder("dense-ae", code_dim=ae_cfg.code_dim),
                                         best_checkpoint(ae_run))
    run_dir = new_run_dir(EXERCISE, cfg.run.name, runs_dir=cfg.run.runs_dir or None)
    cfgmod.save(cfg, run_dir / "config.yaml")
    code_size = autoencoder.code_size if autoencoder is not None else cfg.code_dim
    grid = SvmGrid(cfg.svm.c_values, cfg.svm.gamma_scales, cfg.svm.cv_samples, cfg.svm.cv_folds, cfg.run.seed)
    started = time.perf_counter()
    rows = svm_table(cfg.features, FeatureInputs(images.train.x, images.test.x, autoencoder, code_size),
                     images.train.y, images.test.y, grid)
    outputs = write_table(rows, run_dir / "svm", caption=f"RBF SVM on notMNIST: {len(images.train.x)} train, "
                                                         f"{len(images.test.x)} test images")
    # Not a training run, so not the training summary contract: kind says what it is.
    files.write_text(run_dir / "summary.json", json.dumps({
        "name": run_dir.name, "exercise": EXERCISE, "kind": "svm", "ae_run": str(ae_run), "rows": rows,
        "wall_time_s": time.perf_counter() - started, "train_images": len(images.train.x),
        "test_images": len(images.test.x), "data_fingerprint": images.fingerprint, "seed": cfg.run.seed,
        **environment()}, indent=2))
    print(outputs[0].read_text())
    return run_dir


# ---- denoise: the convolutional denoising autoencoder ------------------------------------------------


def denoise(cfg: DenoiseConfig) -> Path:
    """Train the denoising autoencoder on fresh noise each epoch; score it on fixed test noise.

    Raises:
        ConfigError: unknown model or noise spec (before any data is read). TrainingDiverged: a NaN loss.
    """
    with cpu_threads(cfg.threads):
        return _denoise(cfg)


def _denoise(cfg: DenoiseConfig) -> Path:
    spec = parse_noise(cfg.noise)
    AUTOENCODERS.get(cfg.model)  # an unknown name fails here, listing the known ones
    pl.seed_everything(cfg.run.seed, verbose=False)
    images = load_images(cfg.data, cfg.run.seed)
    noisy_test = noisy_copy(images.test.x, spec, seed=cfg.test_noise_seed)
    split = monitored(images)  # val's fixed noise is drawn from the next seed: never the test's
    noisy_eval = noisy_test if split == "test" else noisy_copy(images.val.x, spec, seed=cfg.test_noise_seed + 1)
    model = create_autoencoder(cfg.model)
    run_dir = open_run(EXERCISE, cfg, cfg.run, images.fingerprint)
    train_loader = TensorLoader(images.train.x, images.train.x, cfg.optim.batch_size, shuffle=True, seed=cfg.run.seed,
                                transform=NoiseTransform(spec))  # (noisy, clean) pairs, new noise every epoch
    eval_loader = TensorLoader(noisy_eval, images.split(split).x, cfg.data.eval_batch_size)
    result, best = _fit_autoencoder(model, cfg, run_dir, train_loader, eval_loader, split)
    if not result.is_global_zero:
        return run_dir

    denoised, test_loss = reconstruct_scored(best, noisy_test, images.test.x, cfg.optim.loss)
    noisy, cleaned = quality(noisy_test, images.test.x), quality(denoised, images.test.x)
    scores = {"test_loss": test_loss,
              "test_mse": cleaned["mse"], "test_psnr": cleaned["psnr_db"], "test_ssim": cleaned["ssim"],
              "noisy_mse": noisy["mse"], "noisy_psnr": noisy["psnr_db"], "noisy_ssim": noisy["ssim"],
              "psnr_gain_db": cleaned["psnr_db"] - noisy["psnr_db"]}
    n = FIGURE_IMAGES
    figures.image_rows([("noisy", noisy_test[:n]), ("denoised", denoised[:n]), ("clean", images.test.x[:n])],
                       run_dir / "figures" / "denoising.png", title=f"{cfg.model}, noise {spec}")
    write_table([{"images": "noisy vs clean", **noisy}, {"images": "denoised vs clean", **cleaned}],
                run_dir / "denoising", caption=f"Denoising, noise {spec}, {len(noisy_test)} test images")
    write_summary(run_dir, _run_summary(run_dir, cfg, best, result, scores, noise=str(spec),
                                        code=code_size_line(best), code_values=best.code_size,
                                        code_shape=list(best.code_shape), decoder_bytes_float32=parameter_bytes(best.decoder),
                                        train_images=len(images.train.x), test_images=len(images.test.x),
                                        val_images=len(images.val) if images.val is not None else 0,
                                        data_fingerprint=images.fingerprint))
    return run_dir


# ---- re-scoring a finished run -----------------------------------------------------------------


def evaluate_run(run_dir: str | Path, split: str = "test", data_dir: str = "", data_root: str = "") -> dict[str, Any]:
    """Re-score an ``ae`` or ``denoise`` run's best checkpoint on ``split`` (its own data, or ``data_dir``/
    ``data_root``); a denoiser is scored on the run's fixed noise, drawn again from its seed.

    Returns:
        {"split", "images", "mse", "psnr_db", "ssim"}: of the reconstructions against the clean images.

    Raises:
        ConfigError: not an ``ae`` or ``denoise`` run, or val of a run trained without one.
    """
    run_dir = Path(run_dir)
    overrides = {k: v for k, v in {"data.data_dir": data_dir, "data.data_root": data_root}.items() if v}
    check_split_drawn_alike(recorded_summary(run_dir, EXERCISE), run_dir, split)
    recorded = cfgmod.read_yaml(run_dir / "config.yaml")
    if "noise" in recorded:
        cfg: AEConfig | DenoiseConfig = cfgmod.load(DenoiseConfig, run_dir / "config.yaml", overrides)
        model = create_autoencoder(cfg.model)
    elif "code_dim" in recorded and "features" not in recorded:
        cfg = cfgmod.load(AEConfig, run_dir / "config.yaml", overrides)
        model = create_autoencoder("dense-ae", code_dim=cfg.code_dim)
    else:
        raise ConfigError(f"{run_dir}: not a run of `notmnist ae` or `notmnist denoise`")
    images = load_images(cfg.data, cfg.run.seed)
    if split == "val" and images.val is None:
        raise ConfigError(f"{run_dir} has no val split (it was trained with val_fraction 0): use --split test or train")
    clean = images.split(split).x
    inputs = clean
    if isinstance(cfg, DenoiseConfig):  # the noise the run was scored on (val's from the next seed)
        inputs = noisy_copy(clean, parse_noise(cfg.noise), seed=cfg.test_noise_seed + (split == "val"))
    best = load_model_weights(model, best_checkpoint(run_dir)).eval()
    q = quality(reconstruct(best, inputs), clean)
    return {"split": split, "images": len(clean), **q}


# ---- the commands (see cnnlab.cli) -----------------------------------------------------------------


def _print_result(run_dir: Path) -> None:
    s = read_summary(run_dir)
    gain = f", gain {s['psnr_gain_db']:+.1f} dB over the noisy input" if "psnr_gain_db" in s else ""
    print(f"{run_dir}: test MSE {s['test_mse']:.4f}, PSNR {s['test_psnr']:.2f} dB{gain} "
          f"(best epoch {s['best_epoch']} of {s['epochs']}, chosen on {s['monitor'].replace('_', ' ')}"
          f"{': an optimistic test figure' if s['monitor'].startswith('test') else ''}; {s['wall_time_s']:.0f} s)")


def cmd_ae(cfg: AEConfig) -> int:
    run_dir = train_ae(cfg)
    if (run_dir / "summary.json").is_file():
        _print_result(run_dir)
    return 0


def cmd_sweep(cfg: SweepConfig) -> int:
    outputs = sweep(cfg)
    print(f"sweep: {outputs[0]} (also .csv, .tex) and {outputs[-1]}")
    return 0


def cmd_svm(cfg: SvmConfig) -> int:
    run_dir = svm_or_reuse(cfg)
    print(f"{run_dir}: SVM table in {run_dir / 'svm.md'} (also .csv, .tex)")
    return 0


def cmd_denoise(cfg: DenoiseConfig) -> int:
    run_dir = denoise(cfg)
    if (run_dir / "summary.json").is_file():
        _print_result(run_dir)
    return 0


def cmd_summary(options: AutoencoderOptions) -> int:
    try:
        model = create_autoencoder(options.model, **options.options)
    except TypeError as e:
        raise ConfigError(f"options: {options.model} does not take {', '.join(options.options)} ({e})") from None
    print(describe_autoencoder(model))
    return 0


def cmd_evaluate(options: EvaluateOptions) -> int:
    r = evaluate_run(options.run_dir, options.split, options.data_dir, options.data_root)
    print(f"{options.run_dir}: {r['split']} MSE {r['mse']:.4f}, PSNR {r['psnr_db']:.2f} dB, SSIM {r['ssim']:.3f} "
          f"on {r['images']} images (best checkpoint)")
    return 0
