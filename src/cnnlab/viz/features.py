"""Figures of the feature comparison: accuracy against labels per class, and a 2-D map of each feature space."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab import files


def plot_label_budgets(rows: list[dict], out: Path) -> Path:
    """Test accuracy (%) against labelled training images per class (log axis): one colour per extractor,
    logistic regression solid and the RBF SVM dashed, 95% intervals as error bars. ``rows``: the
    feature table's (``features``, ``probe``, ``labels_per_class``, ``test_acc``, ``test_low``, ``test_high``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(dict.fromkeys(r["features"] for r in rows)):
        for probe, style in (("logreg", "-"), ("svm", "--")):
            line = sorted((r for r in rows if r["features"] == name and r["probe"] == probe),
                          key=lambda r: r["labels_per_class"])
            if not line:
                continue
            x = [r["labels_per_class"] for r in line]
            y = [100 * r["test_acc"] for r in line]
            err = [[100 * (r["test_acc"] - r["test_low"]) for r in line], [100 * (r["test_high"] - r["test_acc"]) for r in line]]
            ax.errorbar(x, y, yerr=err, fmt=style, marker="o", markersize=3, capsize=2, color=colours[i % len(colours)],
                        label=f"{name} ({'logistic' if probe == 'logreg' else 'RBF SVM'})")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images per class (log scale)")
    ax.set_ylabel("test accuracy % (95% interval)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    files.save_figure(fig, out, dpi=110)
    plt.close(fig)
    return out


def plot_maps(maps: dict[str, np.ndarray], labels: np.ndarray, classes: tuple[str, ...], out: Path) -> Path:
    """One 2-D map (N, 2) per feature space, points coloured by their class (``labels`` (N,))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(maps))
    rows = (len(maps) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, points) in zip(axes.flat, maps.items()):
        for c, label in enumerate(classes):
            mask = labels == c
            ax.scatter(points[mask, 0], points[mask, 1], s=4, color=cmap(c % 10), label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, markerscale=3, loc="best")
    fig.suptitle("t-SNE of each feature space on test letters, coloured by class")
    fig.tight_layout()
    files.save_figure(fig, out, dpi=100)
    plt.close(fig)
    return out
