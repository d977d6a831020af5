"""Safe extraction of ``.tar`` / ``.tar.gz`` datasets.

Archives are untrusted input: a member with an absolute path, a ``..`` component, or a link that
points outside the extraction folder is refused before anything is written (and Python's ``data``
extraction filter double-checks). Extraction goes to a temporary folder renamed into place at the
end, so an interrupted or failed extraction never leaves a half-filled folder behind.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from cnnlab import files
from cnnlab.data.images import is_junk
from cnnlab.errors import DataError


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tar", ".tar.gz", ".tgz"))


def _unsafe_reason(member: tarfile.TarInfo) -> str | None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")):
        return "absolute path"
    if ".." in name.parts:
        return "'..' in path"
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        if target.is_absolute():
            return "link to an absolute path"
        base = name.parent if member.issym() else PurePosixPath(".")
        depth = 0
        for part in (base / target).parts:
            depth += -1 if part == ".." else (0 if part == "." else 1)
            if depth < 0:
                return "link pointing outside the archive"
    if member.isdev():
        return "device file"
    return None


def check_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    for member in members:
        reason = _unsafe_reason(member)
        if reason:
            raise DataError(f"{archive}: refusing unsafe archive member {member.name!r} ({reason})")


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` (created; must not exist yet) and return ``dest``."""
    archive = Path(archive)
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    tmp = dest.with_name(dest.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    files.make_dirs(tmp)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            check_members(archive, members)
            tar.extractall(tmp, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib_error()) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if files.is_disk_error(e):
            raise files.disk_error(e, dest, "extract into") from None
        raise DataError(f"{archive}: cannot read archive, it may be truncated or corrupt ({e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():  # not another process finishing first: a real failure
            raise
    return dest


def zlib_error() -> type[BaseException]:
    import zlib

    return zlib.error


def single_top_folder(root: Path) -> Path:
    """The folder itself, or its only child folder when an archive wrapped everything in one (junk
    such as ``__MACOSX/`` beside it does not count)."""
    entries = [p for p in root.iterdir() if not is_junk(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return root
