"""Where things live: the data root, the cache of prepared tensors, and the runs folder.

Data root: ``--data-root`` > ``$CNNLAB_DATA`` > ``~/.cache/cnnlab``. Prepared (decoded) tensors and
extracted archives go to ``$CNNLAB_CACHE`` > ``~/.cache/cnnlab/prepared``, never into the data root,
which may be read-only (``../shared/data`` is).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path("~/.cache/cnnlab")


def data_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("CNNLAB_DATA"):
        return Path(os.environ["CNNLAB_DATA"]).expanduser()
    return DEFAULT_HOME.expanduser()


def cache_root() -> Path:
    from cnnlab.files import make_dirs

    root = Path(os.environ.get("CNNLAB_CACHE") or DEFAULT_HOME.expanduser() / "prepared").expanduser()
    return make_dirs(root)


def runs_root(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get("CNNLAB_RUNS") or "runs")
