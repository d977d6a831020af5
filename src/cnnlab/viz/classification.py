"""How a classifier did on a split: top-1, top-5, per-class accuracy, confusion matrix and its figure.

    scores = classification_scores(logits, targets, classes)   # plain numbers, JSON-ready
    plot_confusion(scores["confusion"], classes, "confusion.png", title="...")
"""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab import files
from cnnlab.metrics import topk_accuracy


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts; row = true class, column = predicted class."""
    flat = targets * num_classes + predictions  # (N,) index of each (true, predicted) cell
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def classification_scores(logits: torch.Tensor, targets: torch.Tensor, classes: list[str]) -> dict:
    """top1, top5 (fractions), per_class accuracy {class: fraction} and the confusion matrix (lists)."""
    confusion = confusion_matrix(logits.argmax(1), targets, len(classes))
    per_class = confusion.diag().float() / confusion.sum(1).clamp_min(1).float()
    return {
        "top1": topk_accuracy(logits, targets, 1),
        "top5": topk_accuracy(logits, targets, 5),
        "per_class": {name: round(float(acc), 4) for name, acc in zip(classes, per_class)},
        "confusion": confusion.tolist(),
    }


def plot_confusion(confusion: list[list[int]], classes: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix as a PNG (each row sums to 1: the recall of that class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = torch.tensor(confusion, dtype=torch.float32)
    rates = counts / counts.sum(1, keepdim=True).clamp_min(1)  # (K, K)
    k = len(classes)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=90, fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 25:  # numbers stay legible up to about this many classes
        for i in range(k):
            for j in range(k):
                if counts[i, j] > 0:
                    ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if rates[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    files.save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path
