"""Tiny Food-101 trees in the official layout, for the tests of Exercise 2.

    food-101/images/<class>/<id>.jpg      small JPEGs, one colour per class plus noise (learnable)
    food-101/meta/classes.txt             deliberately NOT alphabetical: "first N" must follow this file
    food-101/meta/{train,test}.txt        "<class>/<id>" per line
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

CLASSES = ("ramen", "apple_pie", "sushi", "bibimbap")  # classes.txt order


def make_food_tree(root: Path, classes=CLASSES, train_per_class: int = 4, test_per_class: int = 2,
                   size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """Write ``root/food-101`` and return it."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    food = root / "food-101"
    (food / "meta").mkdir(parents=True)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for c, name in enumerate(classes):
        (food / "images" / name).mkdir(parents=True)
        colour = rng.integers(0, 256, size=3)
        for i in range(train_per_class + test_per_class):
            pixels = np.clip(colour + rng.normal(0, 20, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
            image_id = f"{100 * (c + 1) + i}"
            Image.fromarray(pixels).save(food / "images" / name / f"{image_id}.jpg", quality=90)
            lines["train" if i < train_per_class else "test"].append(f"{name}/{image_id}")
    (food / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, entries in lines.items():
        (food / "meta" / f"{split}.txt").write_text("\n".join(entries) + "\n")
    return food


def tar_tree(food: Path, archive: Path) -> Path:
    """``archive`` (.tar or .tar.gz) holding ``food-101/`` at its top, as the shared copy does."""
    mode = "w:gz" if archive.name.endswith(".gz") else "w"
    with tarfile.open(archive, mode) as tar:
        tar.add(food, arcname="food-101")
    return archive
