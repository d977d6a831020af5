"""The one shape every dataset takes in memory, and the one way to take part of it.

Each dataset module (``cifar10``, ``food101``, ``notmnist``) offers ``load(data_dir=None, data_root=None,
...) -> Dataset``: train / optional val / test splits of tensors, the class names, and where the data came
from with a fingerprint of it. ``subset`` draws a class-balanced part of a split and ``hold_out`` a
class-balanced validation split, both reproducible from their seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch

from cnnlab.data.loader import class_balanced_indices, split_balanced

# Evaluation (test and validation) subsets are drawn with this seed, never the run's: every seed of a
# comparison is then scored on the same images, and only what it trains on follows its seed.
EVAL_SEED = 0


class Split:
    """One split: images ``x`` (N, C, H, W), uint8 0..255 as loaded (float in [0, 1] once scaled), and
    labels ``y`` (N,) int64 indices into the dataset's classes.

    ``Split.rows_of(source, y, index)`` is a split whose images are rows ``index`` of a larger tensor,
    copied out only when ``x`` is first read (and ``take`` of it stays lazy); with all rows (``index``
    None) ``x`` is ``source`` itself, never copied. With ``source`` a memory-mapped cache file, a run that
    never reads the images (a frozen backbone whose features are cached) never holds them in memory, and
    loaders read them a batch at a time through ``rows``.
    """

    __slots__ = ("_x", "_source", "_index", "y")

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._x, self._source, self._index, self.y = x, None, None, y

    @classmethod
    def rows_of(cls, source: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None) -> "Split":
        """Rows ``index`` of ``source`` (all of them, ``source`` itself, when None) with labels ``y``
        (already those rows' labels), read on first use of ``x``.

        Raises:
            ValueError: ``y`` and the rows differ in length.
        """
        rows = len(source) if index is None else len(index)
        if rows != len(y):
            raise ValueError(f"{rows} rows of images but {len(y)} labels")
        split = cls.__new__(cls)
        split._x, split._source, split._index, split.y = None, source, index, y
        return split

    @property
    def x(self) -> torch.Tensor:
        if self._x is None:
            self._x = self._source if self._index is None else self._source[self._index]
            self._source = self._index = None  # the larger tensor is let go once its rows are copied out
        return self._x

    def rows(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(tensor, index): the tensor holding this split's images and which of its rows they are (None:
        all of them), without copying anything out: loaders and extraction read batches of rows from it."""
        if self._x is not None:
            return self._x, None
        return self._source, self._index

    @property
    def is_read(self) -> bool:
        """Whether ``x`` has been read (always, unless made by ``rows_of`` and ``x`` not yet read); a split of
        all the rows of a memory-mapped source then holds its pages only as they are touched."""
        return self._x is not None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: torch.Tensor) -> "Split":
        """The rows ``index`` (positions, or a boolean mask) of this split, lazy when it is."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        if self._x is None:  # stays lazy: rows of the same source
            rows = index if self._index is None else self._index[index]
            return Split.rows_of(self._source, self.y[index], rows)
        return Split(self._x[index], self.y[index])


@dataclass(frozen=True)
class Dataset:
    """A dataset in memory: its splits, class names, the source (file or folder read) and, when asked
    for, the source's fingerprint (it changes when the source does, so caches keyed by it never go stale;
    computed on first use, since it stats every file of a folder source)."""

    train: Split
    test: Split
    classes: tuple[str, ...]
    source: Path
    val: Split | None = None
    known_fingerprint: str = field(default="", repr=False)  # when the loader already has one

    @cached_property
    def fingerprint(self) -> str:
        from cnnlab.data.cache import fingerprint

        return self.known_fingerprint or fingerprint(self.source)

    def split(self, name: str) -> Split:
        """The split called ``name`` (train, val or test).

        Raises:
            KeyError: no such split (val when none was held out).
        """
        found = {"train": self.train, "test": self.test, "val": self.val}.get(name)
        if found is None:
            raise KeyError(f"no {name!r} split (the splits are train, test{', val' if self.val else ''})")
        return found


def subset(split: Split, n: int, seed: int = 0) -> Split:
    """A class-balanced subset of ``n`` examples drawn by ``seed``; the whole split when ``n`` is 0 or
    at least its size."""
    if n <= 0 or n >= len(split):
        return split
    return split.take(class_balanced_indices(split.y, n, seed=seed))


def hold_out(split: Split, fraction: float, seed: int = 0) -> tuple[Split, Split]:
    """(kept, held out): a class-balanced ``fraction`` of ``split`` held out (at least one example)."""
    kept, held = split_balanced(split.y, fraction, seed=seed)
    return split.take(kept), split.take(held)


def subsets(data: Dataset, *, limit_train: int = 0, limit_test: int = 0, seed: int = 0,
            eval_seed: int = EVAL_SEED, val_fraction: float = 0.0) -> Dataset:
    """``data`` with class-balanced subsets: the test split's (``limit_test``) and the val split's drawn by
    ``eval_seed``, the same images whatever the run's seed; only the training subset follows ``seed``.
    0 keeps the whole split.

    With ``val_fraction``, val is that fraction of ``limit_train`` (of the whole train split when 0),
    held out of the whole train split first; the training subset (``limit_train`` minus val) is then
    drawn from the rest, so train and val together are ``limit_train`` images and never overlap.
    """
    train, val = data.train, None
    if val_fraction > 0:
        size = limit_train if 0 < limit_train < len(train) else len(train)
        train, val = hold_out(train, val_fraction * size / len(train), seed=eval_seed)
        limit_train = max(limit_train - len(val), 1) if limit_train else 0
    return replace(data, train=subset(train, limit_train, seed), test=subset(data.test, limit_test, eval_seed),
                   val=val)
