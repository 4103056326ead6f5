"""The preprocessing contract (size, channels, mean, std) as torchvision.transforms.v2 pipelines."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torchvision.transforms import v2


def eval_transform(preprocess: Mapping) -> v2.Compose:
    """Deterministic: resize the short side, center-crop to a square, scale to float, normalize."""
    return v2.Compose([resize_transform(preprocess), normalize_transform(preprocess)])


def resize_transform(preprocess: Mapping) -> v2.Compose:
    """uint8 to uint8: resize the short side to `image_size`, center-crop a square."""
    size = int(preprocess["image_size"])
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])


def normalize_transform(preprocess: Mapping) -> v2.Compose:
    """uint8 (one image or a batch) to normalized float32."""
    return v2.Compose(
        [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(preprocess["mean"]), std=list(preprocess["std"])),
        ]
    )
