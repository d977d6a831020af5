"""cnnlab against the tool the lab's students would otherwise use: the Keras course CNN, side by side.

    make bench-keras                     # builds .venv-keras (tensorflow-cpu, keras), then runs this
    python bench/keras_peer.py --keras-python .venv-keras/bin/python [--epochs 2] [--limit 0]

One run, one machine, one after the other, on the same real CIFAR-10 images (the shared copy, decoded by
cnnlab; Keras gets them as arrays), each side in its own child process so that its peak memory is its own:
1. Keras: the course's network (bench/keras_course.py), Adam 1e-3, batch 128, [0, 1] inputs, fp32.
2. cnnlab, the same network (``sequential`` with the course's widths, dropouts and no BatchNorm:
   2,168,362 parameters), the same optimiser, batch, epochs, no augmentation, test scored every epoch:
   at cnnlab's default precision (``auto``: bf16 autocast on CPUs with native bf16) and in fp32.
3. cnnlab's own recipe for that network (one-cycle AdamW, flips, label smoothing, no crops: a recipe for
   a few epochs; default precision) for as many epochs as fit in Keras's wall time (from run 2's epoch time).
Prints, per run: training images/s (the epochs' batches alone), epoch wall time (with the evaluation),
peak resident memory, test accuracy after each epoch; then the ratios the issue sets as targets:
images/s at defaults (>= 1.5x Keras), fp32 against fp32 (>= 1x), test accuracy at equal wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent
COURSE_MODEL = {"widths": [32, 64], "convs_per_block": 2, "batch_norm": False, "dense": [512], "dropout": 0.5,
                "block_dropout": 0.25}
COURSE_RECIPE = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 128, "schedule": "constant",
                 "warmup": 0.0, "label_smoothing": 0.0, "crop_padding": 0, "flip": False}
OWN_RECIPE = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "batch_size": 128,
              "schedule": "onecycle", "label_smoothing": 0.1, "crop_padding": 0, "flip": True}


def cnnlab_side(args: argparse.Namespace) -> None:
    """Child process: one cnnlab training; writes its per-epoch record and peak memory to --out."""
    from cnnlab.config import build
    from cnnlab.experiments import cifar
    from cnnlab.experiments.cifar import CifarConfig
    from cnnlab.train.engine import quiet_lightning

    quiet_lightning()
    recipe = {**(OWN_RECIPE if args.recipe == "own" else COURSE_RECIPE), "precision": args.precision}
    with tempfile.TemporaryDirectory() as runs:
        cfg = build(CifarConfig, arch="sequential", model=COURSE_MODEL, data_dir=args.data_dir, runs_dir=runs,
                    epochs=args.epochs, limit_train=args.limit, limit_test=args.limit // 5, val_fraction=0.0,
                    monitor="test", progress=False, logger="none", name="peer", **recipe)
        started = time.perf_counter()
        run = cifar.train(cfg)
        wall = time.perf_counter() - started
        with (run / "metrics.csv").open() as f:
            rows = [r for r in csv.DictReader(f) if r.get("test_acc")]
        summary = json.loads((run / "summary.json").read_text())
    epochs, before = [], {"elapsed_s": 0.0, "eval_s": 0.0}
    for r in rows:
        wall_s = float(r["elapsed_s"]) - before["elapsed_s"]
        eval_s = float(r["eval_s"]) - before["eval_s"]
        epochs.append({"epoch": int(r["epoch"]), "train_s": wall_s - eval_s, "wall_s": wall_s,
                       "test_acc": float(r["test_acc"])})
        before = {"elapsed_s": float(r["elapsed_s"]), "eval_s": float(r["eval_s"])}
    Path(args.out).write_text(json.dumps({
        "who": f"cnnlab ({args.recipe} recipe)", "precision": summary["hyperparameters"]["precision"],
        "params": summary["params"], "train_images": summary["train_images"], "test_images": summary["test_images"],
        "epochs": epochs, "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def child(command: list[str], out: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - started  # with imports and data loading
    return result


def images_per_s(result: dict) -> float:
    """Training images/s over the epochs after the first (warm-up), or the only epoch."""
    timed = result["epochs"][1:] or result["epochs"]
    return result["train_images"] * len(timed) / sum(e["train_s"] for e in timed)


def report(results: list[dict]) -> None:
    print(f"\n{'run':<28} {'precision':<26} {'img/s':>7} {'epoch s':>8} {'peak MB':>8}  test acc % by epoch")
    for r in results:
        epoch_s = sum(e["wall_s"] for e in r["epochs"]) / len(r["epochs"])
        accs = " ".join(f"{100 * e['test_acc']:.1f}" for e in r["epochs"])
        print(f"{r['who']:<28} {r['precision']:<26} {images_per_s(r):>7.0f} {epoch_s:>8.1f} {r['peak_rss_mb']:>8.0f}  {accs}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keras-python", default=str(HERE.parent / ".venv-keras" / "bin" / "python"))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="training images (0: all 50,000); test gets a fifth")
    p.add_argument("--side", choices=["cnnlab"], help=argparse.SUPPRESS)  # the child process
    p.add_argument("--recipe", default="course", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        return cnnlab_side(args)
    if not Path(args.keras_python).is_file():
        sys.exit(f"no Keras interpreter at {args.keras_python}: run `make bench-keras` (it builds .venv-keras)")
    import numpy as np

    from cnnlab.data import cifar10
    from cnnlab.data.loader import class_balanced_indices

    source = _common.shared_data("cifar10-jpg.tar.gz")
    _common.header(f"keras_peer: the Keras course CNN in Keras and in cnnlab, {args.epochs} epochs, batch 128; "
                   f"CPU: {_common.cpu_model()}")
    data = cifar10.load(source)
    train_idx = class_balanced_indices(data.train.y, args.limit) if args.limit else slice(None)
    test_idx = class_balanced_indices(data.test.y, args.limit // 5) if args.limit else slice(None)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = Path(tmp) / "cifar.npz"  # NHWC uint8, as Keras takes them
        np.savez(arrays, x_train=data.train.x[train_idx].permute(0, 2, 3, 1).numpy(), y_train=data.train.y[train_idx].numpy(),
                 x_test=data.test.x[test_idx].permute(0, 2, 3, 1).numpy(), y_test=data.test.y[test_idx].numpy())
        del data
        out = Path(tmp) / "result.json"

        def ours(recipe: str, precision: str, epochs: int) -> dict:
            out.unlink(missing_ok=True)
            return child([sys.executable, __file__, "--side", "cnnlab", "--recipe", recipe, "--precision", precision,
                          "--epochs", str(epochs), "--limit", str(args.limit), "--data-dir", str(source),
                          "--out", str(out)], out)

        keras = child([args.keras_python, str(HERE / "keras_course.py"), "--data", str(arrays), "--epochs",
                       str(args.epochs), "--out", str(out)], out)
        print(f"Keras: {keras['versions']}; {keras['params']:,} parameters", flush=True)
        default = ours("course", "auto", args.epochs)
        fp32 = ours("course", "32-true", args.epochs)
        keras_wall = sum(e["wall_s"] for e in keras["epochs"])
        epoch_wall = sum(e["wall_s"] for e in default["epochs"]) / len(default["epochs"])
        own_epochs = max(1, int(keras_wall // epoch_wall))
        own = ours("own", "auto", own_epochs)
    if default["params"] != keras["params"]:
        print(f"note: parameter counts differ: cnnlab {default['params']:,}, Keras {keras['params']:,}")
    report([keras, default, fp32, own])
    k = images_per_s(keras)
    print(f"\nimages/s, cnnlab at defaults / Keras: {images_per_s(default) / k:.2f} (target >= 1.5)")
    print(f"images/s, cnnlab fp32 / Keras fp32: {images_per_s(fp32) / k:.2f} (target >= 1.0)")
    own_wall = sum(e["wall_s"] for e in own["epochs"])
    print(f"equal wall time: Keras {100 * keras['epochs'][-1]['test_acc']:.1f}% after {keras_wall:.0f} s "
          f"({len(keras['epochs'])} epochs); cnnlab's own recipe {100 * own['epochs'][-1]['test_acc']:.1f}% after "
          f"{own_wall:.0f} s ({len(own['epochs'])} epochs; target: higher)")
    print(f"same epochs: Keras {100 * keras['epochs'][-1]['test_acc']:.1f}%, cnnlab (course recipe, defaults) "
          f"{100 * default['epochs'][-1]['test_acc']:.1f}%, fp32 {100 * fp32['epochs'][-1]['test_acc']:.1f}%")


if __name__ == "__main__":
    main()
