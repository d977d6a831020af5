"""Decode once, train from memory: prepared datasets are cached as tensor files keyed by a
fingerprint of their source, so a changed source is never served stale."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

import torch

from cnnlab import files
from cnnlab.data.archive import is_archive, safe_extract
from cnnlab.paths import cache_root


def fingerprint(source: Path, *extra: Any) -> str:
    """A short hash of a file's or folder's names, sizes and modification times (plus ``extra``).

    Stat-based rather than content-based: re-hashing gigabytes on every run would cost more than the
    training it feeds, and any rewrite of a file changes its mtime.
    """
    source = Path(source).resolve()
    h = hashlib.sha256(repr(extra).encode())
    if source.is_file():
        st = source.stat()
        h.update(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), source)
                h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached_tensors(kind: str, source: Path, build: Callable[[], dict[str, Any]], *extra: Any,
                   mmap: bool = False) -> dict[str, Any]:
    """Load ``<cache>/<kind>-<fingerprint>.pt``, or call ``build()`` and save its dict of tensors.

    The file is read with ``weights_only=True``: a cache file is data, never code. With ``mmap`` its
    tensors are memory-mapped (copy-on-write): their pages are read from disk when first touched, so
    tensors never touched cost no memory; a cache built now is saved, let go and returned mapped too.
    """
    path = cache_root() / f"{kind}-{fingerprint(source, *extra)}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True, mmap=mmap)
        except Exception:
            path.unlink(missing_ok=True)  # a cache file that cannot be read is rebuilt, not trusted
    files.remove_leftovers(path.parent, (files.TMP_MARK, ".partial-"))  # of killed writers and extractions
    data = build()
    files.torch_save(data, path)
    if mmap:  # what was built is let go for the mapped file: untouched pages then cost no memory
        del data
        return torch.load(path, weights_only=True, mmap=True)
    return data


def extracted(archive: Path) -> Path:
    """The folder an archive was (once) safely extracted into, inside the cache."""
    dest = cache_root() / f"extracted-{archive.name.split('.')[0]}-{fingerprint(archive)}"
    return dest if dest.is_dir() else safe_extract(archive, dest)


def materialise(path: Path) -> Path:
    """A folder for ``path``: itself, or its archive's extraction."""
    return extracted(path) if is_archive(path) else path
