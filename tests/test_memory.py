"""Memory the lab no longer needs goes back to the OS: what freed tensors leave in glibc's arenas is
released between runs (``release_memory``); within a run, freed activations are kept for the next step
(``reuse_freed_memory``) instead of being faulted in afresh each time."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROGRAM = """
import torch
from cnnlab.train.engine import release_memory
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
held = [torch.ones(25_000) for _ in range(4000)]  # 100 kB each, under glibc's mmap threshold: 400 MB of heap
pin = torch.ones(25_000)  # allocated last: keeps the heap's top in use, so free() alone cannot shrink it
full = rss()
del held
freed = rss()
release_memory()
print(full, freed, rss())
"""


GLIBC = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")


@GLIBC
def test_freed_tensors_memory_is_handed_back_to_the_os():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True).stdout
    full, freed, released = map(float, out.split())
    assert freed > full - 100  # free() alone kept (nearly) all of the 400 MB resident
    assert released < full - 300  # release_memory handed it back


FAULTS = """
import resource, sys, torch
from torch import nn
import cnnlab.train.engine as engine  # imports Lightning, as every training process does
if sys.argv[1] == "policy":
    engine.reuse_freed_memory()
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16 * 16, 10))
x, y = torch.rand(128, 3, 32, 32), torch.randint(0, 10, (128,))
def step():  # one fp32 training step: 16 MiB activations, all freed by its end
    nn.functional.cross_entropy(model(x), y).backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@GLIBC
def test_freed_activations_are_reused_not_faulted_in_again_at_every_step():
    def faults(mode: str) -> float:
        return float(subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                                    check=True).stdout)

    # Both processes import the engine (and Lightning); only one applies the policy make_trainer applies.
    # glibc's default trims the freed activations off its heap at the end of each step and faults them
    # in again in the next.
    plain, policy = faults("plain"), faults("policy")
    assert policy * 3 < plain, f"page faults per step: {policy:.0f} with reuse_freed_memory, {plain:.0f} without"
