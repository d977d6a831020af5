"""Helpers shared by the benchmarks: where the real data is, and a header recording the machine."""

from __future__ import annotations

import atexit
import os
import platform
import resource
import sys
from pathlib import Path

import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def shared_data(name: str) -> Path:
    root = Path(os.environ.get("CNNLAB_DATA") or SHARED_DATA)
    path = root / name
    if not path.exists():
        raise SystemExit(f"benchmark needs {path} (set CNNLAB_DATA to the folder holding it)")
    return path


def peak_memory_line() -> str:
    """This process's peak resident memory and its largest child's, in GB of 10^9 bytes as ``cnnlab lab``
    prints them (ru_maxrss is KiB on Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
    return f"# peak resident memory: {own:.2f} GB" + (f" (largest child process {children:.2f} GB)" if children else "")


def header(title: str) -> None:
    """Print the bench's title and the machine; its peak memory is printed when it exits. Sets cnnlab's
    allocator policy (``reuse_freed_memory``) before anything trains, so plain loops run under it too."""
    from cnnlab.train.engine import reuse_freed_memory

    reuse_freed_memory()
    atexit.register(lambda: print(peak_memory_line(), flush=True))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()} threads"
    print(f"# {title}")
    print(f"# {platform.node()} | {device} | torch {torch.__version__} | python {platform.python_version()}")


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (the clock of every CPU bench depends on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
