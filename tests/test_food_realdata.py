"""Real Food-101 images (../shared/data/food-101-first10.tar; skipped when absent): the offline
EfficientNet-Lite0, Lite1 and Lite2, each with its own timm preprocessing, call breakfast burritos
"burrito" (ImageNet 965)."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch

from cnnlab.data import food101
from cnnlab.data.food101 import decode_image
from cnnlab.errors import DataError
from cnnlab.models.backbones import create_backbone
from cnnlab.data.preprocess import preprocess_for

SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"
ARCHIVE = SHARED_DATA / "food-101-first10.tar"
BURRITO = 965  # ImageNet-1k "burrito"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not ARCHIVE.is_file(), reason="real data ../shared/data is absent")]


def _first_test_images(tmp_path: Path, food_class: str, n: int) -> list[Path]:
    """Extract just ``n`` test images of ``food_class`` (the whole archive is 96 MB)."""
    with tarfile.open(ARCHIVE) as tar:
        test_ids = tar.extractfile("food-101/meta/test.txt").read().decode().split()
        wanted = [f"food-101/images/{i}.jpg" for i in test_ids if i.startswith(food_class + "/")][:n]
        tar.extractall(tmp_path, members=[tar.getmember(m) for m in wanted], filter="data")
    return [tmp_path / m for m in wanted]


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_offline_lite_backbones_see_burritos(tmp_path, backbone):
    model = create_backbone(backbone, keep_classifier=True).eval()
    pre = preprocess_for(model)
    paths = _first_test_images(tmp_path, "breakfast_burrito", 8)
    images = torch.stack([decode_image(p, pre.stored_size, pre.interpolation) for p in paths])
    with torch.no_grad():
        top1 = model(pre.eval_transform()(images)).argmax(1).tolist()  # (8,) ImageNet classes
    assert Counter(top1).most_common(1)[0][0] == BURRITO, top1
    assert top1.count(BURRITO) >= 5, top1


def test_default_twenty_classes_on_the_ten_class_copy_says_which_flag():
    with pytest.raises(DataError, match=r"only 10 classes \(apple_pie \.\.\. breakfast_burrito\).*`num_classes` 10"):
        food101.load(ARCHIVE)
