"""Synthetic run folders on the run-folder contract, for report tests (no training needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.text(0.5, 0.5, text, ha="center")
    ax.axis("off")
    fig.savefig(path)
    plt.close(fig)
    return path


def _run(runs: Path, exercise: str, name: str, summary: dict, epochs: int = 2, metric: str = "test_acc") -> Path:
    run = runs / exercise / name
    run.mkdir(parents=True)
    base = {"name": name, "exercise": exercise, "params": 1000, "epochs": epochs, "best_epoch": epochs,
            "wall_time_s": 12.5, "device": "cpu (test)"}
    (run / "summary.json").write_text(json.dumps({**base, **summary}))
    rows = ["epoch,train_acc,train_loss,test_acc,test_loss"]
    rows += [f"{e},{0.3 + 0.1 * e},{2 - 0.3 * e},{0.25 + 0.1 * e},{2.1 - 0.3 * e}" for e in range(1, epochs + 1)]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    return run


def cifar_runs(runs: Path) -> dict[str, list[float]]:
    accs = {"sequential": [0.61, 0.63], "residual": [0.71, 0.74]}
    for arch, values in accs.items():
        for seed, acc in enumerate(values):
            run = _run(runs, "cifar", f"{arch}-s{seed}", {
                "arch": arch, "architecture": f"Conv 32@3x3/s1/p1 ({arch})", "callback": "ModelCheckpoint(best test_acc, max)",
                "train_acc": acc + 0.1, "test_acc": acc, "monitor": "test_acc",
                "hyperparameters": {"optimizer": "sgd", "lr": 0.05, "batch_size": 64}})
            (run / "architecture.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
                                                 '<rect width="40" height="20" fill="#88c"/></svg>')
            (run / "model_summary.txt").write_text(f"layer table of {arch}\n")
    return accs


def food_runs(runs: Path) -> None:
    for strategy, acc, time_s in (("frozen", 0.80, 5.0), ("finetune", 0.85, 300.0), ("scratch", 0.30, 400.0)):
        run = _run(runs, "food", f"lite0-{strategy}", {
            "backbone": "efficientnet_lite0", "head": "linear", "strategy": strategy,
            "unfreeze": "1" if strategy == "finetune" else None, "trainable_params": 12810,
            "train_acc": acc + 0.05, "test_acc": acc, "top5": min(acc + 0.1, 1.0), "num_classes": 10,
            "per_class_acc": {"apple_pie": acc - 0.1, "baby_back_ribs": acc + 0.05},
            "confusion_png": "confusion.png"})
        (run / "summary.json").write_text((run / "summary.json").read_text().replace('"wall_time_s": 12.5',
                                                                                      f'"wall_time_s": {time_s}'))
        _png(run / "confusion.png", f"confusion {strategy}")
    sweep_runs(runs)


def sweep_runs(runs: Path) -> None:
    """A data-size sweep as `cnnlab food sweep` records it: its runs, table, plot and member list."""
    names, rows = [], ["Images per class,Strategy,Acc. test %,Budget"]
    for per_class, frozen, tuned in ((10, 0.60, 0.55), (100, 0.75, 0.82)):
        for strategy, acc in (("frozen", frozen), ("finetune", tuned)):
            name = f"sweep-{strategy}-{per_class}-s0"
            _run(runs, "food", name, {
                "backbone": "efficientnet_lite0", "head": "linear", "strategy": strategy, "trainable_params": 12810,
                "train_acc": acc, "test_acc": acc, "top5": 0.95, "num_classes": 10, "train_images": 10 * per_class,
                "test_images": 1250, "train_acc_source": "logged during the best epoch"})
            names.append(name)
            rows.append(f"{per_class},{strategy},{100 * acc:.1f},2 epochs")
    (runs / "food" / "sweep.json").write_text(json.dumps({"preset": "sweep", "runs": names}))
    (runs / "food" / "sweep.csv").write_text("\n".join(rows) + "\n")
    (runs / "food" / "sweep.md").write_text("Food-101: test accuracy against training images per class\n\n| ... |\n")
    _png(runs / "food" / "sweep.png", "sweep")


def notmnist_runs(runs: Path) -> None:
    compression = [
        {"method": "raw uint8 pixels", "bytes_per_image": 784, "ratio_vs_raw": 1.0, "mse": 0.0, "psnr_db": 99.0, "ssim": 1.0, "note": "lossless"},
        {"method": "AE code float32 (32 values)", "bytes_per_image": 128, "ratio_vs_raw": 6.1, "mse": 0.025, "psnr_db": 16.0, "ssim": 0.7, "note": ""},
        {"method": "AE code 8-bit (32 values)", "bytes_per_image": 32, "ratio_vs_raw": 24.5, "mse": 0.026, "psnr_db": 15.9, "ssim": 0.69, "note": ""},
        {"method": "PNG at the 8-bit code's PSNR", "bytes_per_image": 150.0, "ratio_vs_raw": 5.2, "mse": 0.026, "psnr_db": 15.9, "ssim": 0.75, "note": "interpolated between 2 grey levels and 4 grey levels"},
        {"method": "JPEG at the 8-bit code's PSNR", "bytes_per_image": 384, "ratio_vs_raw": 2.0, "mse": 0.016, "psnr_db": 18.0, "ssim": 0.8, "note": "quality 1: the cheapest setting at or above"},
    ]
    ae = _run(runs, "notmnist", "dense-ae-32-s0", {"model": "dense-ae", "code_dim": 32, "test_mse": 0.025, "test_psnr": 16.02,
                                                   "test_ssim": 0.71, "compression": compression, "compression_images": 500,
                                                   "decoder_bytes_float32": 103488,
                                                   "hyperparameters": {"loss": "bce", "batch_size": 256}})
    _png(ae / "figures" / "reconstructions.png", "reconstructions")
    _png(ae / "figures" / "codes.png", "codes")
    (runs / "notmnist" / "ae-sweep.csv").write_text("code_dim,test_psnr,test_mse\n8,12.5,0.05\n32,16.02,0.025\n")
    _png(runs / "notmnist" / "ae-sweep.png", "sweep")
    svm = runs / "notmnist" / "svm"
    svm.mkdir()
    (svm / "summary.json").write_text(json.dumps({"name": "svm", "exercise": "notmnist", "kind": "svm", "train_images": 8000,
        "test_images": 2000, "rows": [
            {"features": "raw", "dims": 784, "test_acc": 0.92, "fit_s": 5.5},
            {"features": "ae", "dims": 32, "test_acc": 0.91, "fit_s": 0.6}]}))
    dae = _run(runs, "notmnist", "conv-dae-gaussian0.5-s0", {"model": "conv-dae", "test_mse": 0.019, "test_psnr": 17.14,
        "noisy_mse": 0.116, "noisy_psnr": 9.35, "psnr_gain_db": 7.79, "noise": "gaussian:0.5",
        "code": "code: 128x7x7 = 6272 values per image vs 784 input pixels (8.00x): does NOT compress"})
    (dae / "model_summary.txt").write_text("Conv2d [1, 32, 28, 28]\n...\noutput 1x28x28\n")
    _png(dae / "figures" / "denoising.png", "denoising")
    ssl_and_feature_runs(runs)


def feature_rows(accs: dict[str, tuple[float, float]]) -> list[dict]:
    """Rows of a feature table: per extractor, (test accuracy at 10 labels per class, with all labels)."""
    rows = []
    for name, pair in accs.items():
        for budget, acc in zip(("10", "all"), pair):
            for probe, shift in (("logreg", 0.0), ("svm", -0.01)):
                rows.append({"features": name, "dims": 32, "probe": probe, "budget": budget,
                             "labels_per_class": 10 if budget == "10" else 720, "C": 1.0, "val_acc": acc + shift,
                             "test_acc": acc + shift, "test_low": acc + shift - 0.02, "test_high": acc + shift + 0.02,
                             "seconds": 0.5})
    return rows


def ssl_and_feature_runs(runs: Path) -> None:
    ssl = runs / "notmnist" / "simclr-s0"
    ssl.mkdir(parents=True)
    (ssl / "summary.json").write_text(json.dumps({
        "name": "simclr-s0", "exercise": "notmnist", "kind": "ssl", "method": "SimCLR (NT-Xent, lightly)", "params": 1,
        "epochs": 15, "best_epoch": 15, "wall_time_s": 60.0, "loss_first": 5.1, "loss_last": 3.9, "temperature": 0.5,
        "batch_size": 256, "augmentations": "random resized crop, affine; no flips", "train_images": 7200}))
    feats = runs / "notmnist" / "features"
    feats.mkdir(parents=True)
    rows = feature_rows({"raw": (0.70, 0.88), "ae": (0.72, 0.86), "ssl": (0.80, 0.90), "imagenet": (0.74, 0.91)})
    (feats / "summary.json").write_text(json.dumps({
        "name": "features", "exercise": "notmnist", "kind": "features", "rows": rows, "train_images": 7200,
        "val_images": 800, "test_images": 2000, "origins": {"raw": "the 784 pixels"}}))
    _png(feats / "features.png", "features")
    _png(feats / "tsne.png", "tsne")
