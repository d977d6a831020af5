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
if sys.argv[1] == "engine":
    import cnnlab.train.engine  # noqa: F401  (sets the allocator's policy on import)
for _ in range(3):
    torch.ones(4 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(4 * 2**20)  # 16 MiB, freed at once: one step's activation
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@GLIBC
def test_a_freed_activation_is_reused_not_faulted_in_again():
    def faults(mode: str) -> float:
        return float(subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                                    check=True).stdout)

    # glibc's default: a fresh mmap per 16 MiB block, its pages faulted in each time. The engine's policy:
    # the freed block is reused.
    plain, engine = faults("plain"), faults("engine")
    assert engine < 50, f"{engine:.0f} page faults per 16 MiB block after importing the engine ({plain:.0f} without)"
