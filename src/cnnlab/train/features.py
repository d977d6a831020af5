"""Frozen-backbone features, computed once and cached on disk.

A frozen backbone maps each (deterministically preprocessed) image to the same pooled feature vector
every epoch, so computing it more than once is waste: ``cached_features`` runs the backbone once per
(data source, split, classes, backbone, weights, preprocessing, precision) and stores (N, F) float32
features in the cache folder; every head after that trains from memory in seconds. The key holds a
hash of the weights themselves, so different weights (pretrained or not, another checkpoint) can never
be served features of others.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from cnnlab.data.cache import cached_tensors
from cnnlab.data.preprocess import Preprocess
from cnnlab.data.splits import Split
from cnnlab.models.backbones import backbone_identity, weights_digest
from cnnlab.models.transfer import TransferNet
from cnnlab.train.inference import in_batches, run_batches


def image_batch_size(device: torch.device) -> int:
    """Images per batch for inference through an ImageNet backbone on ``device``: 16 on a CPU, where small
    batches run faster and hold a fraction of a large one's activations (bench/eval_batch.py
    --backbones measures both), 256 on a GPU."""
    return 256 if device.type == "cuda" else 16


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def extract_features(net: TransferNet, images: torch.Tensor, pre: Preprocess, *, batch_size: int = 64,
                     bf16: bool = False, device: torch.device | None = None,
                     rows: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 images (N, 3, S, S), or their rows ``rows`` read a batch at a time, -> pooled features
    (N or len(rows), F) float32: eval preprocessing, eval mode."""
    net.to(device or default_device())
    batches = in_batches(images, batch_size, pre.eval_transform(), rows=rows)
    return run_batches(net, net.forward_features, batches, bf16=bf16, empty=(0, net.num_features))


def cached_features(net: TransferNet, images: Split, pre: Preprocess, *, source: Path, split: str,
                    key: tuple, bf16: bool = False, batch_size: int = 64, kind: str = "features",
                    device: torch.device | None = None) -> tuple[torch.Tensor, dict]:
    """(features (N, F), info) from the cache, or extracted now from the images of ``images``, which are
    read only then, a batch at a time (see ``Split.rows``); ``key`` names what they are (split, classes, limit): the data
    source's fingerprint is added by the cache itself. ``info``: whether they were extracted now
    (``built``) and the seconds the extraction took, now or when it was cached."""
    info = {"built": False, "seconds": 0.0, "images_per_s": None}

    def build() -> dict[str, torch.Tensor]:
        print(f"cnnlab: extracting {split} features of {len(images)} images (once; cached)", file=sys.stderr)
        started = time.perf_counter()
        source, rows = images.rows()  # read a batch at a time: the split's images are never copied out whole
        features = extract_features(net, source, pre, batch_size=batch_size, bf16=bf16, device=device, rows=rows)
        info.update(built=True, seconds=time.perf_counter() - started)
        info["images_per_s"] = len(images) / max(info["seconds"], 1e-9)
        return {"features": features, "seconds": torch.tensor(info["seconds"], dtype=torch.float64)}

    # The weights themselves, and what built the backbone (timm model and version: the same weights in
    # another architecture or timm release may compute other features).
    digest = weights_digest(net.backbone)
    data = cached_tensors(kind, source, build, split, key, digest, backbone_identity(net.backbone), pre.key(), bf16)
    if not info["built"] and "seconds" in data:  # what the extraction cost when it was done, for budgets
        info["seconds"] = float(data["seconds"])
        info["images_per_s"] = len(images) / max(info["seconds"], 1e-9)
    return data["features"], info
