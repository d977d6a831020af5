"""Two augmented views of each image, for contrastive self-supervised learning (lightly's
``MultiViewTransform`` over torchvision transforms).

The augmentations keep a letter a letter: a random resized crop of most of the image and a small affine
jitter; no flips (a mirrored J is not a J) and no colour changes (the letters are grey).
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


def letter_views(size: int = 28, min_scale: float = 0.6, degrees: float = 10.0, translate: float = 0.1):
    """lightly's two-view transform: PIL image -> [view (1, size, size), view] floats in [0, 1]."""
    from lightly.transforms.multi_view_transform import MultiViewTransform
    from torchvision import transforms as T

    view = T.Compose([T.RandomResizedCrop(size, scale=(min_scale, 1.0), antialias=True),
                      T.RandomAffine(degrees=degrees, translate=(translate, translate), shear=5),
                      T.ToTensor()])
    return MultiViewTransform(transforms=[view, view])


def describe_views(min_scale: float = 0.6, degrees: float = 10.0, translate: float = 0.1) -> str:
    return (f"random resized crop (scale {min_scale:g}-1), affine (rotation up to {degrees:g} degrees, shift up to "
            f"{100 * translate:g}%, shear up to 5 degrees); no flips, no colour changes")


class ViewPairs(Dataset):
    """uint8 images (N, 1, 28, 28) served as ``(view_a, view_b)`` pairs of floats in [0, 1]."""

    def __init__(self, images: torch.Tensor, transform=None):
        self.images = images
        self.transform = transform or letter_views()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        a, b = self.transform(Image.fromarray(self.images[i, 0].numpy(), "L"))
        return a, b
