"""Training faults users meet (issue: every machine, every fault): divergence, Ctrl-C, resumes that
keep the record whole and true, corrupt checkpoints, unwritable or full disks, simultaneous starts.
Each ends in one clear line with its exit code and nothing half-written."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.train.checkpoint import read_checkpoint
from cnnlab.runs import new_run_dir

SEQ = ["--arch", "sequential", "--model.widths", "[8,16,32]", "--model.dense", "[32]"]


def train_args(data, *extra) -> list[str]:
    return ["cifar", "train", *SEQ, "--data-dir", str(data), "--batch-size", "16", "--no-progress", *extra]


def rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` with its modification time and bytes."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def runs() -> Path:
    return Path(os.environ["CNNLAB_RUNS"]) / "cifar"


def cli(*args: str, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


# ---- divergence -------------------------------------------------------------------------------------------


def test_a_nan_loss_stops_the_run_with_exit_3_and_records_it(cifar_tree, capsys):
    assert main(train_args(cifar_tree, "--lr", "1e6", "--epochs", "3", "--name", "boom")) == 3
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1]
    assert line.startswith("cnnlab: error: training diverged") and "epoch" in line and "step" in line
    assert "lower learning rate" in line and len([l for l in err if "error" in l]) == 1
    summary = json.loads((runs() / "boom" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged_epoch"] >= 1
    assert "test_acc" not in summary and "train_acc" not in summary
    for ckpt in (runs() / "boom" / "checkpoints").glob("*.ckpt"):  # only epochs that ended finite
        weights = read_checkpoint(ckpt)["state_dict"]
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_compare_and_report_show_a_diverged_run_as_diverged(cifar_tree, tmp_path, capsys):
    config = tmp_path / "table.yaml"
    config.write_text(f"""
defaults: {{data_dir: {cifar_tree}, epochs: 1, batch_size: 16, progress: false, logger: none}}
runs:
  - {{name: ok, arch: sequential, model: {{widths: [8, 16, 32], dense: [16]}}}}
  - {{name: bad, arch: sequential, epochs: 3, lr: 1.0e+6, model: {{widths: [8, 16, 32], dense: [16]}}}}
""")
    assert main(["cifar", "compare", "--config", str(config)]) == 3
    table = (runs() / "table1.md").read_text()
    bad_row = next(line for line in table.splitlines() if line.startswith("| bad"))
    ok_row = next(line for line in table.splitlines() if line.startswith("| ok"))
    assert bad_row.count("diverged") >= 2 and "%" not in bad_row.split("|")[4]
    assert "diverged" not in ok_row
    capsys.readouterr()
    # a second compare reuses the diverged run (it would diverge again) and still shows it
    assert main(["cifar", "compare", "--config", str(config)]) == 3
    assert "reusing finished run" in capsys.readouterr().out
    assert main(["report", "--runs", os.environ["CNNLAB_RUNS"], "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "diverged" in report and "bad-s0" in report
    section = report.split("Table 1")[1] if "Table 1" in report else report
    assert "| bad" not in section.split("Hyper-parameters")[0]  # never a row of results


# ---- Ctrl-C -------------------------------------------------------------------------------------------------


def test_ctrl_c_exits_130_with_where_and_how_to_resume(cifar_tree):
    args = [*train_args(cifar_tree, "--epochs", "200", "--name", "sigint"), "--logger", "none"]
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    from cnnlab.train.engine import epoch_held

    metrics = runs() / "sigint" / "metrics.csv"
    deadline = time.time() + 240
    # Wait for last.ckpt itself to hold epoch 2 (a metrics.csv row is written before its epoch's checkpoint)
    while time.time() < deadline and epoch_held(runs() / "sigint" / "checkpoints" / "last.ckpt") < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    line = err.strip().splitlines()[-1]
    assert "interrupted during epoch" in line and "--resume --name sigint" in line and "Traceback" not in err
    last = read_checkpoint(runs() / "sigint" / "checkpoints" / "last.ckpt")  # loadable
    done = last["callbacks"]["EpochRecord"]["last_epoch"]
    assert f"holds epoch {done}" in line and done >= 2
    assert not list((runs() / "sigint").rglob("*.tmp-*"))
    # and the resume that the message suggests works
    assert main([*args, "--epochs", str(done + 1), "--resume"]) == 0
    assert [int(r["epoch"]) for r in rows(metrics)] == list(range(1, done + 2))


def test_ctrl_c_inside_a_checkpoint_write_is_still_a_clean_interrupt(cifar_tree):
    helper = Path(__file__).with_name("kill_helper.py")
    done = subprocess.run([sys.executable, str(helper), "sigint-in-write",
                           *train_args(cifar_tree, "--epochs", "5", "--name", "w", "--logger", "none")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "interrupted during epoch" in done.stderr.strip().splitlines()[-1]
    assert not list((runs() / "w").rglob("*.tmp-*"))
    for ckpt in (runs() / "w").rglob("*.ckpt"):
        read_checkpoint(ckpt)


# ---- resume keeps the record whole and true -----------------------------------------------------------------


def test_resume_keeps_every_epoch_in_every_log(cifar_tree):
    assert main(train_args(cifar_tree, "--epochs", "2", "--name", "r", "--logger", "csv")) == 0
    assert main(train_args(cifar_tree, "--epochs", "3", "--name", "r", "--logger", "csv", "--resume")) == 0
    assert main(train_args(cifar_tree, "--epochs", "4", "--name", "r", "--logger", "csv", "--resume")) == 0
    run = runs() / "r"
    assert [int(r["epoch"]) for r in rows(run / "metrics.csv")] == [1, 2, 3, 4]
    logged = {int(float(r["epoch"])) for r in rows(run / "logs" / "metrics.csv") if r.get("val_acc")}
    assert logged == {0, 1, 2, 3}  # Lightning's own log counts from 0; no epoch lost to a resume
    assert "epochs: 4" in (run / "config.yaml").read_text()  # the applied change is recorded
    assert json.loads((run / "summary.json").read_text())["epochs"] == 4


def test_a_failed_or_refused_resume_changes_nothing(cifar_tree, capsys):
    assert main(train_args(cifar_tree, "--epochs", "2", "--name", "keep")) == 0
    capsys.readouterr()
    run = runs() / "keep"
    before = snapshot(run)
    # a setting that would make the run something else is refused, naming it
    assert main(train_args(cifar_tree, "--epochs", "3", "--name", "keep", "--resume", "--lr", "0.5")) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "lr 0.001 -> 0.5" in err and err.count("\n") == 1
    assert snapshot(run) == before
    # a truncated last.ckpt: told apart from an unsafe one, with how to go on
    last = run / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    before = snapshot(run)
    assert main(train_args(cifar_tree, "--epochs", "3", "--name", "keep", "--resume")) == 2
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "--force" in err and "best.ckpt" in err
    assert "refusing" not in err and err.count("\n") == 1
    assert snapshot(run) == before
    # --force starts over
    assert main(train_args(cifar_tree, "--epochs", "1", "--name", "keep", "--force")) == 0
    assert [int(r["epoch"]) for r in rows(run / "metrics.csv")] == [1]


def test_resume_of_a_missing_run_is_a_clear_error(cifar_tree, capsys):
    assert main(train_args(cifar_tree, "--epochs", "1", "--name", "ghost", "--resume")) == 2
    assert "no run" in capsys.readouterr().err and not (runs() / "ghost").exists()


# ---- disks -------------------------------------------------------------------------------------------------


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a tmpfs with the given options (root only; skipped elsewhere)."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_read_only_runs_folder(cifar_tree, mount_tmpfs):
    ro = mount_tmpfs("ro", "ro,size=1m")
    done = cli(*train_args(cifar_tree, "--epochs", "1", "--runs-dir", str(ro / "runs")))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("cnnlab: error: cannot create") and "read-only file system" in line and str(ro) in line


def test_read_only_cache_folder(cifar_tree, mount_tmpfs):
    ro = mount_tmpfs("ro", "ro,size=1m")
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", *train_args(cifar_tree, "--epochs", "1")], capture_output=True, text=True,
        timeout=300, env={**os.environ, "CNNLAB_CACHE": str(ro / "cache")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "read-only file system" in done.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(os.geteuid() != 0, reason="runs as root to drop to an unprivileged user")
def test_missing_permission(cifar_tree, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)  # owned by root: user nobody may read, not write
    for p in [tmp_path, *tmp_path.parents]:
        if p != Path("/"):
            os.chmod(p, os.stat(p).st_mode | 0o005)
    os.chmod(cifar_tree, 0o755)
    env = {**os.environ, "CNNLAB_RUNS": str(locked / "runs"), "CNNLAB_CACHE": str(tmp_path / "nobody-cache"),
           "HOME": str(tmp_path)}
    (tmp_path / "nobody-cache").mkdir(mode=0o777)
    os.chmod(tmp_path / "nobody-cache", 0o777)
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "cnnlab", *train_args(cifar_tree, "--epochs", "1")], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert "permission denied" in line and str(locked) in line and "Traceback" not in done.stderr


def test_full_disk_leaves_no_truncated_file(cifar_tree, mount_tmpfs):
    full = mount_tmpfs("full", "size=256k")
    done = cli(*train_args(cifar_tree, "--epochs", "2", "--name", "f", "--runs-dir", str(full)))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "no space left on device" in done.stderr.strip().splitlines()[-1] and "Traceback" not in done.stderr
    run = full / "cifar" / "f"
    assert not list(run.rglob("*.tmp-*"))  # no temporary file left behind
    for ckpt in run.rglob("*.ckpt"):  # whatever exists is whole
        read_checkpoint(ckpt)
    if (run / "metrics.csv").exists():
        rows(run / "metrics.csv")


def test_full_disk_cache(cifar_tree, mount_tmpfs):
    full = mount_tmpfs("full", "size=16k")
    done = subprocess.run([sys.executable, "-m", "cnnlab", *train_args(cifar_tree, "--epochs", "1")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "CNNLAB_CACHE": str(full)})
    assert done.returncode == 2 and "no space left on device" in done.stderr and "Traceback" not in done.stderr
    assert not list(full.rglob("*.pt")) and not list(full.rglob("*.tmp-*"))


# ---- simultaneous starts -------------------------------------------------------------------------------------


def _start(args) -> str:
    barrier, runs_dir = args
    barrier.wait()
    return new_run_dir("cifar", "same", runs_dir=runs_dir).name


def test_eight_simultaneous_starts_get_eight_folders(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Manager().Barrier(8)
    with ctx.Pool(8) as pool:
        names = pool.map(_start, [(barrier, str(tmp_path / "r"))] * 8)
    assert sorted(names) == sorted(["same", *(f"same-{n}" for n in range(2, 9))])


def test_read_only_report_folder(tmp_path, mount_tmpfs):
    ro = mount_tmpfs("ro", "ro,size=1m")
    done = cli("report", "--runs", str(tmp_path / "no-runs"), "--out", str(ro / "report"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "read-only file system" in done.stderr.strip().splitlines()[-1]


def test_corrupt_checkpoints_are_called_corrupt_never_unsafe_never_a_traceback(tmp_path):
    import random

    from cnnlab.errors import CheckpointError

    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"model.w": torch.randn(64, 32)}, "epoch": 3, "callbacks": {"x": {"a": 1.5}}}, good)
    data = good.read_bytes()
    rng = random.Random(0)
    for i in range(150):
        bad = bytearray(data)
        if i % 3 == 0:
            bad = bad[: rng.randrange(len(bad))]
        else:
            for _ in range(rng.randint(1, 8)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
        path = tmp_path / f"bad{i}.ckpt"
        path.write_bytes(bytes(bad))
        try:
            read_checkpoint(path)
        except CheckpointError as e:
            assert "truncated or corrupt" in str(e) and "refusing" not in str(e), str(e)


def test_resume_refuses_a_checkpoint_without_the_record(cifar_tree, capsys):
    assert main(train_args(cifar_tree, "--epochs", "1", "--name", "old")) == 0
    last = runs() / "old" / "checkpoints" / "last.ckpt"
    state = read_checkpoint(last)
    del state["callbacks"]["EpochRecord"]  # as an older cnnlab wrote it
    torch.save(state, last)
    before = snapshot(runs() / "old")
    capsys.readouterr()
    assert main(train_args(cifar_tree, "--epochs", "2", "--name", "old", "--resume")) == 2
    assert "older cnnlab" in capsys.readouterr().err and snapshot(runs() / "old") == before


def test_leftovers_of_dead_processes_go_and_those_of_live_ones_stay(tmp_path):
    from cnnlab import files

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f"last.ckpt.tmp-{dead_pid}").write_bytes(b"half")
    (tmp_path / f"last.ckpt.tmp-{os.getpid()}").write_bytes(b"being written")
    (tmp_path / f"extracted-x.partial-{dead_pid}").mkdir()
    assert files.remove_leftovers(tmp_path, (files.TMP_MARK, ".partial-")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"last.ckpt.tmp-{os.getpid()}"]


def test_finite_loss_refuses_to_record_an_epoch_whose_weights_or_statistics_overflowed():
    """The last step of an epoch can overflow the weights after a finite loss: the epoch must not be saved."""
    from types import SimpleNamespace

    from cnnlab.errors import TrainingDiverged
    from cnnlab.train.engine import FiniteLoss

    trainer = SimpleNamespace(world_size=1, sanity_checking=False, optimizers=[], current_epoch=1, global_step=7)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    FiniteLoss().on_validation_start(trainer, model)  # finite: nothing happens
    model[1].running_var[0] = float("inf")
    with pytest.raises(TrainingDiverged, match="epoch 2, step 7"):
        FiniteLoss().on_validation_start(trainer, model)
    model[1].running_var[0] = 1.0
    model[0].weight.data[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="running statistics"):
        FiniteLoss().on_train_epoch_end(trainer, model)


def test_finite_loss_checks_the_weights_once_per_step_an_evaluated_epochs_end_is_not_checked_again():
    from types import SimpleNamespace

    from cnnlab.errors import TrainingDiverged
    from cnnlab.train.engine import FiniteLoss

    trainer = SimpleNamespace(world_size=1, sanity_checking=False, optimizers=[], current_epoch=0, global_step=3)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    check = FiniteLoss()
    check.on_validation_start(trainer, model)
    model[0].weight.data[0, 0] = float("nan")  # (no step between evaluation and the epoch's end can do this)
    check.on_train_epoch_end(trainer, model)   # the same step: already checked, not scanned twice
    trainer.global_step = 4
    with pytest.raises(TrainingDiverged, match="running statistics"):
        check.on_train_epoch_end(trainer, model)


def test_the_interrupt_message_names_the_epoch_that_last_ckpt_holds(tmp_path):
    # A Ctrl-C can land after last.ckpt is renamed into place and before the callback notes it: the
    # message then reads the file, not the callback (this once said "holds epoch 4" of a file holding 5).
    from cnnlab.train.engine import epoch_held

    last = tmp_path / "last.ckpt"
    assert epoch_held(last) == 0  # no file: nothing to resume
    torch.save({"callbacks": {"EpochRecord": {"last_epoch": 5}}}, last)
    assert epoch_held(last) == 5
    last.write_bytes(last.read_bytes()[:40])  # truncated
    assert epoch_held(last) == 0


def test_best_ckpt_into_a_read_only_folder_is_a_disk_error(tmp_path, mount_tmpfs):
    from cnnlab import files
    from cnnlab.errors import DiskError
    from cnnlab.train.checkpoint import copy_atomic

    ro = mount_tmpfs("ro", "ro,size=1m")
    files.torch_save({"epoch": 1}, tmp_path / "last.ckpt")
    with pytest.raises(DiskError, match="read-only"):
        copy_atomic(tmp_path / "last.ckpt", ro / "best.ckpt")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the NVML library name is Linux's")
@pytest.mark.parametrize("driver", [True, False])
def test_the_cuda_check_skips_the_nvml_probe_only_without_a_driver(monkeypatch, driver):
    import ctypes

    from cnnlab.train import engine

    def cdll(name):
        if name == "libnvidia-ml.so.1" and not driver:
            raise OSError(f"{name}: cannot open shared object file")
        return object()

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # as Lightning sets it on import
    engine.plain_cuda_check_without_nvml()
    # With a driver the fork-safe NVML check stays; without one it goes (nothing to initialise or inherit).
    assert (os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1") is driver
