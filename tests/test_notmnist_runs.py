"""One-epoch smoke runs of every ``cnnlab notmnist`` command on tiny idx files, bad inputs, and one
real-data check (skipped when ../shared/data is absent)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnlab.config import build
from cnnlab.cli import main
from cnnlab.data.notmnist import FILES
from notmnist_helpers import write_notmnist

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUIET = ["--no-progress", "--logger", "none"]


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_notmnist(tmp_path / "tiny-notmnist", n_train=60, n_test=20)


def runs(tmp_path) -> Path:
    return tmp_path / "runs" / "notmnist"  # CNNLAB_RUNS points at tmp_path/runs (conftest)


def test_ae_writes_a_complete_run_folder(tiny, tmp_path):
    rc = main(["notmnist", "ae", "--data-dir", str(tiny), "--epochs", "1", "--code-dim", "4",
               "--batch-size", "16", *QUIET])
    assert rc == 0
    run = runs(tmp_path) / "dense-ae-4-s0"
    for name in ("config.yaml", "metrics.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "summary.json",
                 "model_summary.txt", "compression.md", "compression.csv", "figures/reconstructions.png",
                 "figures/codes.png"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["exercise"] == "notmnist" and summary["code_dim"] == 4 and summary["epochs"] == 1
    assert summary["params"] == (784 * 4 + 4) + (4 * 784 + 784)
    assert 0 < summary["test_psnr"] < 60 and 0 < summary["test_mse"] < 1
    with (run / "metrics.csv").open() as f:
        row = next(csv.DictReader(f))
    assert {"train_loss", "val_loss", "val_mse", "val_psnr"} <= set(row) and "test_loss" not in row
    assert summary["monitor"] == "val_loss" and summary["test_loss"] > 0  # val chose; test scored once
    assert (run / "figures" / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"


def test_denoise_scores_noisy_and_denoised(tiny, tmp_path):
    rc = main(["notmnist", "denoise", "--data-dir", str(tiny), "--epochs", "1", "--batch-size", "32",
               "--noise", "saltpepper:0.2", *QUIET])
    assert rc == 0
    run = runs(tmp_path) / "conv-dae-saltpepper0.2-s0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["noise"] == "saltpepper:0.2"
    assert summary["psnr_gain_db"] == pytest.approx(summary["test_psnr"] - summary["noisy_psnr"])
    assert "6272" in summary["code"] and summary["code_values"] == 6272 and summary["code_shape"] == [128, 7, 7]
    assert summary["monitor"] == "val_loss"
    assert (run / "figures" / "denoising.png").is_file() and (run / "denoising.md").is_file()


def test_sweep_writes_table_and_plot_and_reuses_runs(tiny, tmp_path, capsys):
    args = ["notmnist", "ae-sweep", "--data-dir", str(tiny), "--epochs", "1", "--dims", "2,4", "--batch-size", "32",
            *QUIET]
    assert main(args) == 0
    stem = runs(tmp_path) / "ae-sweep"
    for suffix in (".md", ".csv", ".tex", ".png"):
        assert stem.with_suffix(suffix).is_file(), suffix
    with stem.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["code_dim"]) for r in rows] == [2, 4]
    capsys.readouterr()
    assert main(args) == 0  # the same sweep again trains nothing
    assert capsys.readouterr().out.count("reusing finished run") == 2


def test_svm_table_on_tiny_data(tiny, tmp_path, capsys):
    assert main(["notmnist", "ae", "--data-dir", str(tiny), "--epochs", "1", "--code-dim", "4", "--batch-size", "32",
                 *QUIET]) == 0
    rc = main(["notmnist", "svm", "--data-dir", str(tiny), "--code-dim", "4", "--cv-folds", "2", "--c-values", "1,10",
               "--gamma-scales", "1", *QUIET])
    assert rc == 0
    run = runs(tmp_path) / "svm"
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"{run}: SVM table in {run / 'svm.md'} (also .csv, .tex)"
    with (run / "svm.csv").open() as f:
        rows = {r["features"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"raw", "ae", "pca"}
    assert [int(rows[k]["dims"]) for k in ("raw", "ae", "pca")] == [784, 4, 4]
    assert float(rows["raw"]["test_acc"]) >= 0.9  # the tiny letters are bars at ten rows: easy
    assert all(float(r["fit_s"]) > 0 and float(r["predict_s"]) > 0 for r in rows.values())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "svm" and Path(summary["ae_run"]).name == "dense-ae-4-s0"


def test_svm_offers_no_training_flags(tiny, capsys):
    assert main(["notmnist", "svm", "--data-dir", str(tiny), "--epochs", "3"]) == 2
    assert "unknown option --epochs" in capsys.readouterr().err


def test_summary_command_prints_shapes(capsys):
    assert main(["notmnist", "summary", "--model", "conv-dae"]) == 0
    out = capsys.readouterr().out
    assert "[1, 128, 7, 7]" in out and "6272" in out


def test_group_alone_prints_its_help(capsys):
    main(["notmnist"])
    assert "ae-sweep" in capsys.readouterr().out


def test_truncated_file_is_one_line_and_exit_2(tiny, capsys):
    path = tiny / FILES["test_images"]
    path.write_bytes(path.read_bytes()[:50])
    assert main(["notmnist", "ae", "--data-dir", str(tiny), "--epochs", "1", *QUIET]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnlab: error:") and "t10k-images-idx3-ubyte.gz" in err[0]


@pytest.mark.parametrize("bad", [["denoise", "--noise", "gaussian:lots"], ["svm", "--features", "raw,pixels"],
                                 ["ae", "--code-dim", "0"], ["denoise", "--model", "dense"]])
def test_bad_settings_exit_2(tiny, bad, capsys):
    assert main(["notmnist", *bad, "--data-dir", str(tiny), *QUIET]) == 2
    assert capsys.readouterr().err.startswith("cnnlab: error:")


# ---- real data ----------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_real_notmnist_ae_and_svm(tmp_path, precision):
    folder = REAL_DATA / "notmnist"
    if not folder.is_dir():
        pytest.skip("real data ../shared/data is absent")
    from cnnlab.experiments.notmnist import AEConfig, SvmConfig, svm, train_ae
    from cnnlab.runs import read_summary

    run = train_ae(build(AEConfig, data_dir=str(folder), epochs=5, precision=precision, progress=False, logger="none"))
    assert read_summary(run)["test_psnr"] > 10.0  # the mean image scores 7.1 dB
    svm_run = svm(build(SvmConfig, data_dir=str(folder), features=["raw", "ae"], cv_samples=500, c_values=[10.0],
                        gamma_scales=[1.0], progress=False))
    assert json.loads((svm_run / "summary.json").read_text())["ae_run"] == str(run)  # the finished ae run, reused
    rows = {r["features"]: r for r in json.loads((svm_run / "summary.json").read_text())["rows"]}
    assert rows["raw"]["test_acc"] > 0.80 and rows["ae"]["test_acc"] > 0.70


def test_svm_grid_is_log_spaced_and_an_edge_choice_is_announced(capsys):
    from cnnlab.experiments.configs import SvmOptions
    from cnnlab.experiments.notmnist_svm import SvmGrid, grid_edges

    c_values = SvmOptions().c_values
    ratios = {round(b / a, 6) for a, b in zip(c_values, c_values[1:])}
    assert len(ratios) == 1 and min(c_values) <= 0.1 and max(c_values) >= 1000  # log-spaced, wide
    grid = SvmGrid([1.0, 10.0, 100.0], [0.5, 1.0, 2.0], 100, 2)
    assert grid_edges(10.0, 1.0, grid) == []
    assert grid_edges(100.0, 0.5, grid) == ["C 100 is the highest tried", "gamma 0.5 is the lowest tried"]
    assert grid_edges(1.0, 1.0, SvmGrid([1.0], [1.0], 100, 2)) == []  # a single value is no edge


def test_an_autoencoder_that_diverges_is_recorded_as_diverged(tiny, tmp_path, capsys):
    """A NaN reconstruction is a divergence (exit 3, status diverged), not a crash inside the BCE loss."""
    rc = main(["notmnist", "ae", "--data-dir", str(tiny), "--epochs", "2", "--batch-size", "16", "--lr", "1e999",
               "--name", "boom", *QUIET])
    assert rc == 3 and "training diverged" in capsys.readouterr().err
    assert json.loads((runs(tmp_path) / "boom" / "summary.json").read_text())["status"] == "diverged"
