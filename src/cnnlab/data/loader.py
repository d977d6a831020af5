"""Batches straight from tensors in memory: no per-image Python, no worker processes.

``TensorLoader`` takes its index order from an ``EpochShuffle`` sampler: shuffled by seed and epoch,
sharded by rank for DDP. Lightning calls ``sampler.set_epoch`` at the start of every epoch (as it does
for a ``DistributedSampler``), so each epoch gets a new order and new augmentation, and a resumed run
sees the same ones as an uninterrupted run. Without Lightning, each pass moves on to the next epoch by
itself. Each batch goes through an optional whole-batch transform (augmentation, normalisation,
layout) before ``(x, y)`` is yielded. With ``alternating_flips`` the loader mirrors images itself
(it alone knows each image's index and the epoch): a seeded random half in even epochs, the other half
in odd ones, so every image is seen both ways every two epochs (airbench's alternating flip), where
independent coin flips leave a quarter of the images unmirrored, or mirrored, two epochs running.
"""

from __future__ import annotations

from typing import Callable

import torch

BatchTransform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class EpochShuffle:
    """This rank's share of ``range(n)`` for one epoch, shuffled by ``seed`` and the epoch number."""

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def augmentation_generator(self, epoch: int) -> torch.Generator | None:
        """The random stream of this epoch's augmentation on this rank (None when not shuffling)."""
        if not self.shuffle:
            return None
        return torch.Generator().manual_seed(self.seed * 7_919 + epoch * 31 + self.rank)

    def indices(self, epoch: int) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        else:
            order = torch.arange(self.n)
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


class TensorLoader:
    """``(x, y)`` batches of ``batch_size`` rows of ``x`` (N, ...) and ``y`` (N,); with ``rows``, of
    ``x[rows]`` and ``y`` (len(rows),) without copying those rows out first (see ``Split.rows``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 drop_last: bool = False, transform: BatchTransform | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1, alternating_flips: bool = False,
                 rows: torch.Tensor | None = None):
        n = len(x) if rows is None else len(rows)
        if n != len(y):
            raise ValueError(f"x has {n} rows but y has {len(y)}")
        self.x, self.y, self.rows = x, y, rows
        self.batch_size, self.drop_last, self.transform = batch_size, drop_last, transform
        self.sampler = EpochShuffle(n, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
        self.batch_sampler = None  # Lightning inspects both, as on a torch DataLoader
        # The same draw on every rank: an image's side depends on its index, not on the shard.
        self.flipped_first = (torch.rand(n, generator=torch.Generator().manual_seed(seed * 7_919 + 1))
                              < 0.5) if alternating_flips else None

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def shard(self, rank: int, world_size: int) -> None:
        """Read only this rank's share of every epoch (DDP)."""
        self.sampler.rank, self.sampler.world_size = rank, world_size

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        epoch = self.sampler.epoch
        self.sampler.set_epoch(epoch + 1)  # advance now: Lightning may stop after the last batch without exhausting us
        order, g = self.sampler.indices(epoch), self.sampler.augmentation_generator(epoch)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            x = self.x[idx if self.rows is None else self.rows[idx]]
            # An autoencoder's targets are its inputs (y is x): one gather serves both, before any transform
            # (a denoiser's noise) touches the input.
            y = x if self.y is self.x and self.rows is None else self.y[idx]
            if self.flipped_first is not None:
                flip = self.flipped_first[idx] ^ bool(epoch % 2)
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            if self.transform is not None:
                x = self.transform(x, g)
            yield x, y


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
