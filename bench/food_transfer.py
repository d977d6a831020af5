"""Transfer learning on the shared 10-class Food-101 copy, on this machine: what each strategy costs and
what it scores, with a scikit-learn logistic regression on the same cached features as a yardstick.

    python bench/food_transfer.py [--preset quick] [--runs-dir DIR] [--extract-images 256] [--set YAML]

It runs (or reuses, when the runs folder already holds them with the same config) the runs of the quick
comparison through cnnlab's own ``train()``, then prints:

* feature extraction, images/s: a fresh timed pass of ``--extract-images`` test images through the
  frozen backbone (the cached features themselves are made once and reused);
* seconds to train a head from the cache (Lightning fit; and the whole ``train()`` call);
* seconds per fine-tuning epoch (phase 2: augmented images through the backbone + test evaluation);
* test accuracy of frozen+linear, frozen+MLP, finetune and scratch, and of
  ``LogisticRegression(max_iter=3000)`` fitted on the same cached train features.

Targets (the issue's): head from cache < 10 s; frozen+linear within 1 point of the logistic regression;
finetune > frozen; scratch far below both.
"""

from __future__ import annotations

import argparse
import time

import _common
import yaml

import torch

from cnnlab.train.features import extract_features
from cnnlab.experiments import food
from cnnlab.experiments.common import reuse_or_resume
from cnnlab.train.engine import resolve_precision
from cnnlab.train.freeze import freeze
from cnnlab.runs import read_summary

def run_all(preset: str, runs_dir: str | None, overrides: dict) -> list[tuple[food.FoodConfig, dict, float]]:
    """(config, summary, seconds of the train() call, 0 when reused) of every run of the preset."""
    defaults, runs = food.read_compare_config(food.EXERCISE, preset)
    defaults["data_dir"] = str(_common.shared_data("food-101-first10.tar"))
    if runs_dir:
        defaults["runs_dir"] = runs_dir
    results = []
    for run in runs:
        cfg, finished = reuse_or_resume(food.EXERCISE, food.run_config(defaults, run, overrides))
        started = time.perf_counter()
        run_dir = finished or food.train(cfg)
        results.append((cfg, read_summary(run_dir), 0.0 if finished else time.perf_counter() - started))
    return results


def extraction_speed(cfg: food.FoodConfig, n: int) -> tuple[float, str]:
    """Images/s of one fresh pass through the frozen backbone (eval preprocessing, training precision)."""
    pre = food.backbone_preprocess(cfg.backbone, cfg.data.input_size)
    data = food.load_data(cfg, pre)
    net = food.build_net(cfg, len(data.classes))
    freeze(net.backbone)
    bf16 = resolve_precision(cfg.hardware.precision, cfg.hardware.accelerator).startswith("bf16")
    images = data.test.take(torch.arange(min(n, len(data.test)))).x  # n images read, not the split
    extract_features(net, images[:16], pre, bf16=bf16)  # warm-up: kernel selection, allocations
    started = time.perf_counter()
    extract_features(net, images, pre, batch_size=food.eval_batch_size(cfg), bf16=bf16)
    return len(images) / (time.perf_counter() - started), "bf16" if bf16 else "fp32"


def logistic_regression(cfg: food.FoodConfig) -> tuple[float, float]:
    """(test accuracy, seconds) of scikit-learn's logistic regression on the cached features."""
    from sklearn.linear_model import LogisticRegression

    pre = food.backbone_preprocess(cfg.backbone, cfg.data.input_size)
    data = food.load_data(cfg, pre)
    net = food.build_net(cfg, len(data.classes))
    inputs = food.features_of(net, data, pre, cfg)  # the very features the frozen heads trained from
    (x_train, y_train), (x_test, y_test) = [(inputs.splits[s].x, inputs.splits[s].y) for s in ("train", "test")]
    started = time.perf_counter()
    model = LogisticRegression(max_iter=3000).fit(x_train.numpy(), y_train.numpy())
    return float(model.score(x_test.numpy(), y_test.numpy())), time.perf_counter() - started


def label(summary: dict) -> str:
    extra = f" (last {summary['unfreeze']})" if summary.get("unfreeze") else ""
    return f"{summary['strategy']}{extra} + {summary['head']}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="a food preset (quick, full) or a preset YAML file")
    p.add_argument("--runs-dir", default=None, help="where the runs go [default: ./runs, shared with the CLI]")
    p.add_argument("--extract-images", type=int, default=256, help="images timed for extraction speed")
    p.add_argument("--set", metavar="YAML", help="config keys for every run, as YAML, e.g. '{epochs: 1}'")
    args = p.parse_args()
    _common.header("Food-101 transfer learning (shared 10-class copy)")

    started = time.perf_counter()
    results = run_all(args.preset, args.runs_dir, yaml.safe_load(args.set or "{}"))
    frozen_cfg = next(cfg for cfg, s, _ in results if s["strategy"] == "frozen" and s["head"] == "linear")
    speed, precision = extraction_speed(frozen_cfg, args.extract_images)
    sklearn_acc, sklearn_s = logistic_regression(frozen_cfg)

    print(f"feature extraction: {speed:.1f} images/s ({frozen_cfg.backbone}, {precision}, "
          f"{torch.get_num_threads()} threads)")
    for cfg, s, call_s in results:
        features = s.get("features") or {}
        if s["strategy"] == "frozen":
            print(f"head from cache ({s['head']}): {s['wall_time_s']:.1f} s fit for {s['epochs']} epochs"
                  + (f", {call_s:.1f} s whole train() call" if call_s else " (reused run)")
                  + (f" [that run first extracted the features: {features['seconds']:.0f} s, "
                     f"{features['images_per_s']:.0f} images/s]" if features.get("built") else ""))
        if s["strategy"] in ("finetune", "scratch"):
            body = s["phases"][-1]
            print(f"{s['strategy']} epoch (augmented train + test eval): "
                  f"{body['wall_time_s'] / max(body['epochs'], 1):.0f} s, {body['trainable_params']:,} trainable")
    print()
    print(f"{'configuration':<36} {'test %':>7} {'top-5 %':>8} {'train %':>8} {'epochs':>7} {'time':>8}")
    for cfg, s, _ in results:
        print(f"{label(s):<36} {100 * s['test_acc']:>7.1f} {100 * s['top5']:>8.1f} {100 * s['train_acc']:>8.1f} "
              f"{s['epochs']:>7} {s['wall_time_s']:>7.0f}s")
    print(f"{'sklearn LogisticRegression (cached)':<36} {100 * sklearn_acc:>7.1f} {'':>8} {'':>8} {'':>7} "
          f"{sklearn_s:>7.0f}s")

    by = {(s["strategy"], s["head"]): s for _, s, _ in results}
    linear = by.get(("frozen", "linear"))
    frozen_best = max(s["test_acc"] for _, s, _ in results if s["strategy"] == "frozen")
    finetune = max((s["test_acc"] for _, s, _ in results if s["strategy"] == "finetune"), default=None)
    scratch = max((s["test_acc"] for _, s, _ in results if s["strategy"] == "scratch"), default=None)
    heads_s = max(s["wall_time_s"] for _, s, _ in results if s["strategy"] == "frozen")
    print()
    print(f"target head from cache < 10 s: {heads_s:.1f} s -> {'met' if heads_s < 10 else 'NOT met'}")
    if linear:
        gap = 100 * (linear["test_acc"] - sklearn_acc)
        print(f"target frozen+linear within 1 point of logistic regression: {gap:+.1f} points -> "
              f"{'met' if gap >= -1 else 'NOT met'}")
    if finetune is not None:
        print(f"target finetune > frozen: {100 * finetune:.1f} vs {100 * frozen_best:.1f} -> "
              f"{'met' if finetune > frozen_best else 'NOT met'}")
    if scratch is not None:
        print(f"target scratch far below: {100 * scratch:.1f} vs {100 * frozen_best:.1f} -> "
              f"{'met' if scratch < frozen_best - 0.2 else 'NOT met'}")
    print(f"benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
