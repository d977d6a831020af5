"""Exact epoch metrics: per-split sums (loss x count, correct, count, ...) added batch by batch and
summed across DDP ranks when read, so an epoch's mean never depends on batch sizes or rank count."""

from __future__ import annotations

import torch


class EpochSums:
    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}

    def add(self, split: str, sums: torch.Tensor) -> None:
        self._sums[split] = self._sums.get(split, torch.zeros_like(sums)) + sums

    def pop(self, split: str, trainer) -> list[float] | None:
        """The split's totals over all ranks (and forget them), or None when nothing was added."""
        sums = self._sums.pop(split, None)
        if sums is None:
            return None
        if trainer.world_size > 1:
            sums = trainer.strategy.reduce(sums, reduce_op="sum")
        return sums.tolist()
