"""Lookahead weight averaging, as airbench uses it: every ``every`` optimiser steps the weights (and
BatchNorm statistics) are pulled into a slow copy, ``slow = decay * slow + (1 - decay) * fast``, and
the fast weights restart from it. ``decay`` grows as ``base * progress ** power``: nothing early on,
when the net must move fast, and strong smoothing near the end, where averaging removes SGD noise.
On the last step the fast weights take the slow copy, so checkpoints hold the averaged net.

The slow copy is not checkpointed: right after each pull the fast weights equal it, so a resumed run
restarts it from the weights it loads (at most ``every - 1`` steps away).
"""

from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    def __init__(self, every: int = 5, base: float = 0.95 ** 5, power: float = 3.0):
        self.every, self.base, self.power = every, base, power
        self.fast: list[torch.Tensor] | None = None  # the model's own float tensors, updated in place
        self.slow: list[torch.Tensor] | None = None

    def decay(self, step: int, total_steps: int) -> float:
        return self.base * min(step / max(total_steps, 1), 1.0) ** self.power

    @torch.no_grad()
    def step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Call after optimiser step number ``step`` (1-based) of ``total_steps``."""
        if self.fast is None:
            self.fast = [t for t in model.state_dict().values() if t.is_floating_point()]
            self.slow = [t.detach().clone() for t in self.fast]
        last = step >= total_steps
        if step % self.every and not last:
            return
        decay = 1.0 if last else self.decay(step, total_steps)
        torch._foreach_lerp_(self.slow, self.fast, 1.0 - decay)
        torch._foreach_copy_(self.fast, self.slow)
