"""Memory the lab no longer needs goes back to the OS: what freed tensors leave in glibc's arenas is
released between runs (``release_memory``)."""

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


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_freed_tensors_memory_is_handed_back_to_the_os():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True).stdout
    full, freed, released = map(float, out.split())
    assert freed > full - 100  # free() alone kept (nearly) all of the 400 MB resident
    assert released < full - 300  # release_memory handed it back
