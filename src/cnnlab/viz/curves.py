"""Training curves from run folders' ``metrics.csv``: accuracy and loss per epoch, train and eval."""

from __future__ import annotations

import csv
from pathlib import Path

from cnnlab import files


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in rows]


def plot_curves(runs: dict[str, Path], out: Path, metrics: tuple[str, ...] = ("acc", "loss"),
                title: str = "") -> Path | None:
    """One panel per metric; each run a colour: train dashed (the running value over the epoch's augmented
    batches, in train mode), val dotted, test solid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {name: read_metrics(path) for name, path in runs.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        for i, (name, rows) in enumerate(series.items()):
            colour = colours[i % len(colours)]
            epochs = [r["epoch"] for r in rows]
            for split, style in (("train", "--"), ("val", ":"), ("test", "-")):
                key = f"{split}_{metric}"
                if any(key in r for r in rows):
                    values = [r.get(key) for r in rows]
                    ax.plot(epochs, values, style, color=colour, marker="o", markersize=3,
                            label=f"{name} {split}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    files.save_figure(fig, out, dpi=110)
    plt.close(fig)
    return out


def plot_data_size_sweep(points: list[dict], out: Path, title: str = "") -> Path:
    """Test accuracy (%) against training images per class (log axis), one line per strategy, each point
    with its 95% interval as an error bar. ``points``: {"strategy", "per_class", "acc", "low", "high"}
    (fractions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for strategy in dict.fromkeys(p["strategy"] for p in points):
        line = sorted((p for p in points if p["strategy"] == strategy), key=lambda p: p["per_class"])
        x = [p["per_class"] for p in line]
        y = [100 * p["acc"] for p in line]
        err = [[100 * (p["acc"] - p["low"]) for p in line], [100 * (p["high"] - p["acc"]) for p in line]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=strategy)
    ax.set_xscale("log")
    ax.set_xlabel("training images per class (log scale)")
    ax.set_ylabel("test accuracy % (95% interval)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    files.save_figure(fig, out, dpi=110)
    plt.close(fig)
    return out
