"""``cnnlab cache list|clear``: the prepared-data cache (decoded datasets, extracted archives, frozen
features) in ``$CNNLAB_CACHE`` (default ``~/.cache/cnnlab/prepared``). Everything in it is rebuilt from
the data on the next run that needs it, so clearing it loses no result.

    cnnlab cache list
    cnnlab cache clear
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from cnnlab.files import translated
from cnnlab.paths import cache_root


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def entries(root: Path) -> list[tuple[Path, int, float]]:
    """(path, bytes, modification time) of each top-level entry of the cache, largest first."""
    found = [(p, _size(p), p.stat().st_mtime) for p in root.iterdir()] if root.is_dir() else []
    return sorted(found, key=lambda e: -e[1])


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def cmd_list() -> int:
    root = cache_root()
    rows = entries(root)
    for path, size, mtime in rows:
        print(f"{_mb(size):>12}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(mtime))}  {path.name}")
    print(f"{root}: {len(rows)} entries, {_mb(sum(s for _, s, _ in rows))}")
    return 0


def cmd_clear() -> int:
    root = cache_root()
    rows = entries(root)
    with translated(root, "clear"):
        for path, _, _ in rows:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    print(f"{root}: removed {len(rows)} entries, freed {_mb(sum(s for _, s, _ in rows))} "
          f"(rebuilt from the data when next needed)")
    return 0
