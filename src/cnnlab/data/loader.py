"""Batches straight from tensors in memory: no per-image Python, no worker processes.

``TensorLoader`` shuffles indices once per epoch (seeded by seed + epoch, so a resumed run sees the
same order), shards them by rank for DDP, and hands each batch to an optional whole-batch transform
(augmentation, normalisation, layout) before yielding ``(x, y)``.
"""

from __future__ import annotations

from typing import Callable

import torch

BatchTransform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class TensorLoader:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 drop_last: bool = False, transform: BatchTransform | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.transform, self.seed = transform, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.x), self.world_size))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self._indices()
        g = torch.Generator().manual_seed(self.seed * 7_919 + self.epoch * 31 + self.rank) if self.shuffle else None
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            x = self.x[idx]
            if self.transform is not None:
                x = self.transform(x, g)
            yield x, self.y[idx]
        self.epoch += 1


def class_balanced_indices(y: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` indices with the classes as equally represented as ``y`` allows, in random order."""
    classes = torch.unique(y)
    g = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(y == c).flatten() for c in classes]
    per_class = [idx[torch.randperm(len(idx), generator=g)] for idx in per_class]
    base, extra = divmod(n, len(classes))
    chosen = [idx[: base + (1 if i < extra else 0)] for i, idx in enumerate(per_class)]
    out = torch.cat(chosen)
    return out[torch.randperm(len(out), generator=g)]


def split_balanced(y: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held_out) indices; ``held_out`` is a class-balanced ``fraction`` of ``y``."""
    held = class_balanced_indices(y, max(1, round(len(y) * fraction)), seed)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[held] = False
    return torch.nonzero(mask).flatten(), held
