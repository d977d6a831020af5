"""`cnnlab lab` end to end on tiny data: every exercise, the report, and resuming after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cnnlab.cli import main
from cnnlab import lab as lab_module

from conftest import write_cifar_tree
from food_tree import make_food_tree
from notmnist_helpers import write_notmnist


@pytest.fixture
def tiny_preset(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data-root"
    write_cifar_tree(root / "cifar10")
    make_food_tree(root)
    write_notmnist(root / "notmnist", n_train=80, n_test=40)
    quiet = {"progress": False, "logger": "none"}
    cifar = tmp_path / "cifar.yaml"
    cifar.write_text(yaml.safe_dump({
        "defaults": {**quiet, "epochs": 1, "batch_size": 16},
        "runs": [{"name": "sequential", "arch": "sequential", "model": {"widths": [8, 16, 32], "dense": [16]}},
                 {"name": "residual", "arch": "residual", "model": {"stem": 8, "widths": [8, 16, 16]}}]}))
    food = tmp_path / "food.yaml"
    food.write_text(yaml.safe_dump({
        "defaults": {**quiet, "input_size": 32, "batch_size": 4, "epochs": 1, "precision": "32-true", "eval_train": False},
        "runs": [{"name": "frozen", "head": "linear", "strategy": "frozen"},
                 {"name": "scratch", "head": "linear", "strategy": "scratch"}]}))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "defaults": {**quiet, "input_size": 32, "batch_size": 4, "epochs": 1, "precision": "32-true",
                     "eval_train": False, "finetune.head_epochs": 1, "finetune.unfreeze": "1"},
        "runs": [{"name": f"sweep-{s}-{n}", "strategy": s, "train_per_class": n}
                 for s in ("frozen", "finetune") for n in (1, 0)]}))
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({
        "cifar": {"preset": str(cifar), "seeds": 1},
        "food": {"preset": str(food), "overrides": {"num_classes": 4}, "sweep": str(sweep)},
        "notmnist": {"ae": {"epochs": 2, **quiet}, "sweep": {"dims": [4, 8], "epochs": 2, **quiet},
                     "svm": {"code_dim": 4, "cv_samples": 40, "cv_folds": 2, "progress": False},
                     "denoise": {"epochs": 1, **quiet}, "ssl": {"epochs": 1, "batch_size": 16, **quiet},
                     "features": {"budgets": [2, 0], "tsne_points": 30, "progress": False}},
        "report": {"out": str(tmp_path / "report")},
        "submission": {"settings": {"CNNLAB_NB_EPOCHS": 1, "CNNLAB_NB_LIMIT": 40, "CNNLAB_NB_CLASSES": 4,
                                    "CNNLAB_NB_INPUT": 64}}}))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "elsewhere"))  # --data-root must win
    return preset


def summaries(runs: Path) -> dict[str, float]:
    return {str(p.relative_to(runs)): p.stat().st_mtime_ns for p in runs.rglob("summary.json")}


def test_lab_runs_everything_and_a_killed_lab_resumes_without_losing_runs(tiny_preset, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    data_root = str(tmp_path / "data-root")

    real_compare = lab_module.run_compare

    def killed_in_food(exercise, *args):
        if exercise == "food":
            raise KeyboardInterrupt
        return real_compare(exercise, *args)

    monkeypatch.setattr(lab_module, "run_compare", killed_in_food)
    assert main(["lab", "--preset", str(tiny_preset), "--data-root", data_root, "--no-progress"]) == 130
    before = summaries(runs)
    assert sorted(before) == ["cifar/residual-s0/summary.json", "cifar/sequential-s0/summary.json"]

    monkeypatch.setattr(lab_module, "run_compare", real_compare)
    (runs / "cifar" / "residual-s0" / "summary.json").unlink()  # as if killed during its last epoch
    capsys.readouterr()
    assert main(["lab", "--preset", str(tiny_preset), "--data-root", data_root, "--no-progress"]) == 0
    out = capsys.readouterr().out
    after = summaries(runs)
    assert after["cifar/sequential-s0/summary.json"] == before["cifar/sequential-s0/summary.json"]  # reused
    assert "cifar/residual-s0/summary.json" in after and not (runs / "cifar" / "residual-s0-2").exists()  # resumed
    assert "reusing finished run" in out and "report:" in out
    steps = out.split("by step:")[1].split("report:")[0]  # each step's wall time, in the order run
    assert [line.split()[0] for line in steps.strip().splitlines()][:2] == ["cifar", "food"]
    for step in ("cifar compare", "food sweep", "notmnist features", "report", "submission (notebooks run)"):
        assert step in steps, step
    peaks = [float(line.split("peak")[1].split()[0]) for line in steps.strip().splitlines()]
    assert all(p > 0.05 for p in peaks) and peaks == sorted(peaks)  # a peak so far only grows
    for expected in ("food/frozen-c4-s0/summary.json", "food/scratch-c4-s0/summary.json", "notmnist/svm/summary.json"):
        assert expected in after
    assert any(k.startswith("notmnist/conv-dae") for k in after)
    assert "notmnist/simclr-s0/summary.json" in after and "notmnist/features/summary.json" in after
    assert (runs / "food" / "sweep.png").is_file() and len(json.loads((runs / "food" / "sweep.json").read_text())["runs"]) == 4
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Missing" not in report and "What the ImageNet weights bought, like for like" in report and "**g) " in report
    assert "The data-size sweep, frozen against fine-tuned at each training size: 1 image per class" in report
    table = json.loads((runs / "cifar" / "sequential-s0" / "summary.json").read_text())
    assert f"{100 * table['test_acc']:.1f}" in report
    check_submission(tmp_path / "report" / "submission.zip", executed=True)
    assert not list(runs.rglob("nb-*"))  # the notebooks' runs are their own, not the lab's

    capsys.readouterr()  # a third run reuses everything
    assert main(["lab", "--preset", str(tiny_preset), "--data-root", data_root, "--no-progress", "--no-notebooks"]) == 0
    assert summaries(runs) == after
    check_submission(tmp_path / "report" / "submission.zip", executed=False)


def check_submission(path: Path, executed: bool) -> None:
    """The zip the lab sheet asks for: the report in three forms and the three notebooks."""
    import shutil
    import zipfile

    import nbformat

    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {"report.html", "report.md", "README.txt"} <= names
        notebooks = sorted(n for n in names if n.startswith("notebooks/") and n.endswith(".ipynb"))
        assert [Path(n).stem for n in notebooks] == ["ex1_non_sequential", "ex2_transfer_learning", "ex3_autoencoders"]
        readme = z.read("README.txt").decode()
        if shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome"):
            assert "report.pdf" in names and z.read("report.pdf")[:5] == b"%PDF-", readme
        for name in notebooks:
            nb = nbformat.reads(z.read(name).decode(), as_version=4)
            outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
            assert bool(outputs) == executed, (name, readme)
            assert not [o for o in outputs if o.output_type == "error"], readme
        assert ("executed top to bottom" in readme) == executed


def test_unknown_preset_and_sections_are_clear_errors(tmp_path, capsys):
    assert main(["lab", "--preset", "quik"]) == 2
    assert "unknown lab preset 'quik' (did you mean 'quick'?)" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("cifar: {preset: quick}\nfod: {}\n")
    assert main(["lab", "--preset", str(bad)]) == 2
    assert "unknown section(s) fod" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_shipped_presets_are_valid(preset):
    from cnnlab.experiments.common import read_compare_config

    spec = lab_module.read_preset(lab_module.preset_path("lab", preset))
    for section in ("cifar", "food"):
        assert read_compare_config(section, spec[section]["preset"])[1]


def test_lab_goes_on_after_a_diverged_run_and_exits_3(tiny_preset, tmp_path, capsys):
    cifar = tmp_path / "cifar.yaml"
    spec = yaml.safe_load(cifar.read_text())
    spec["runs"][1].update(lr=1.0e6, epochs=3)  # the residual entry diverges
    cifar.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    rc = main(["lab", "--preset", str(tiny_preset), "--data-root", str(tmp_path / "data-root"),
               "--runs-dir", str(runs), "--no-progress", "--only", "cifar"])
    assert rc == 3
    assert "diverged" in capsys.readouterr().err
    assert json.loads((runs / "cifar" / "residual-s0" / "summary.json").read_text())["status"] == "diverged"
    assert json.loads((runs / "cifar" / "sequential-s0" / "summary.json").read_text())["status"] == "finished"
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Runs that diverged" in report and "residual-s0" in report
