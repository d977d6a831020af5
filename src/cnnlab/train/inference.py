"""The one batched inference loop: a model function over batches, in eval mode and without gradients,
outputs gathered as float32 on the CPU. Predictions, reconstructions, codes and frozen features all
run through it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


@torch.inference_mode()
def run_batches(model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor], *,
                bf16: bool = False, empty: tuple[int, ...] = (0,)) -> torch.Tensor:
    """``fn(batch)`` for each batch (moved to ``model``'s device), ``model`` in eval mode (its mode is
    restored after), under bf16 autocast when asked; the outputs concatenated as float32 on the CPU.
    ``empty`` is the shape returned when there are no batches."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for batch in batches:
                outs.append(fn(batch.to(device, non_blocking=True)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(empty)


def in_batches(x: torch.Tensor, batch_size: int, transform: Callable | None = None,
               rows: torch.Tensor | None = None) -> Iterable[torch.Tensor]:
    """``x`` (or its rows ``rows``, read a batch at a time) in consecutive batches of ``batch_size``, each
    through ``transform`` when given."""
    for start in range(0, len(x) if rows is None else len(rows), batch_size):
        batch = x[start:start + batch_size] if rows is None else x[rows[start:start + batch_size]]
        yield transform(batch) if transform is not None else batch
