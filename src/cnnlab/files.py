"""Writing files so that a kill, a crash or a full disk never leaves a truncated file where a good one was.

Every file that a later step reads (checkpoints, caches, summaries, tables, configs, metrics) is written
to a temporary name in the same folder, flushed to disk, then renamed over its target: a reader sees the
old file or the new one, never part of one. The OS errors a user can fix (read-only file system, missing
permission, full disk or quota) become one ``DiskError`` line naming the path and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from cnnlab.errors import DiskError

TMP_MARK = ".tmp-"  # temporary files are "<name>.tmp-<pid>"; leftovers of a killed process are ignored
_FIXABLE = {
    errno.EROFS: ("read-only file system", "choose a writable folder"),
    errno.EACCES: ("permission denied", "choose a folder you may write to"),
    errno.EPERM: ("operation not permitted", "choose a folder you may write to"),
    errno.ENOSPC: ("no space left on device", "free some space or choose a folder on another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose a folder on another disk"),
}


def is_disk_error(error: BaseException) -> bool:
    """True for the OS errors that a user fixes by freeing space or choosing another folder."""
    return isinstance(error, OSError) and error.errno in _FIXABLE


def disk_error(error: OSError, path: str | Path, action: str = "write") -> DiskError:
    """The one-line ``DiskError`` for ``error`` raised while doing ``action`` on ``path``."""
    reason, hint = _FIXABLE.get(error.errno or 0, (error.strerror or str(error), "check the folder"))
    where = error.filename or path
    return DiskError(f"cannot {action} {where}: {reason}; {hint} (--runs-dir, $CNNLAB_RUNS, $CNNLAB_CACHE, --out)")


@contextlib.contextmanager
def translated(path: str | Path, action: str = "write") -> Iterator[None]:
    """Turn a fixable OSError inside the block into a ``DiskError`` naming ``path``."""
    try:
        yield
    except OSError as e:
        if is_disk_error(e):
            raise disk_error(e, path, action) from None
        raise


def make_dirs(path: str | Path) -> Path:
    """``mkdir -p`` that fails with a ``DiskError`` line rather than a traceback."""
    path = Path(path)
    with translated(path, "create"):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, the file written there is
    flushed to disk and renamed over ``path``. On any failure the temporary file is removed and
    ``path`` is untouched.

    Raises:
        DiskError: the folder is read-only or not writable, or the disk is full.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with translated(path):
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)  # a full disk may only show here; and a power cut keeps the old file
            finally:
                os.close(fd)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class _WriteErrorKept:
    """A file wrapper that remembers the first exception of a write: ``torch.save`` turns a full disk,
    or a Ctrl-C in the middle of a write, into a RuntimeError from its zip writer, losing what it was."""

    def __init__(self, raw):
        self.raw, self.error = raw, None

    def write(self, data) -> int:
        try:
            return self.raw.write(data)
        except BaseException as e:  # OSError (full disk) or KeyboardInterrupt
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.raw.flush()


def torch_save(obj, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; a full or read-only disk is a ``DiskError``, and a
    Ctrl-C during the write stays a KeyboardInterrupt."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb", buffering=0) as raw:
        kept = _WriteErrorKept(raw)
        try:
            torch.save(obj, kept)
        except RuntimeError:
            if kept.error is not None:
                raise kept.error from None
            raise
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``atomic_path``)."""
    return write_bytes(path, text.encode())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def remove_leftovers(folder: str | Path, marks: tuple[str, ...] = (TMP_MARK,)) -> int:
    """Delete the temporary files and folders (``<name><mark><pid>``) that killed processes left in
    ``folder``; those of a live process (another cnnlab writing now) are kept. Returns how many went."""
    import shutil

    folder, removed = Path(folder), 0
    if not folder.is_dir():
        return 0
    for mark in marks:
        for p in folder.glob(f"*{mark}*"):
            pid = p.name.rsplit(mark, 1)[-1]
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                removed += 1
    return removed


def save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """``fig.savefig`` to ``path`` atomically, creating its folder (format from the suffix)."""
    path = Path(path)
    make_dirs(path.parent)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return path
