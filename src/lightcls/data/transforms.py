"""The preprocessing contract (size, channels, mean, std) as torchvision.transforms.v2 pipelines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torchvision.transforms import v2


def eval_transform(preprocess: Mapping) -> v2.Compose:
    """Deterministic: resize the short side, center-crop to a square, scale to float, normalize."""
    return v2.Compose([*_resize(preprocess), *_normalize(preprocess)])


def train_transform(preprocess: Mapping, augment: Sequence[v2.Transform] = ()) -> v2.Compose:
    """The eval pipeline with the data set's augmentations applied on uint8 before normalizing."""
    return v2.Compose([*_resize(preprocess), *augment, *_normalize(preprocess)])


def _resize(preprocess: Mapping) -> list[v2.Transform]:
    size = int(preprocess["image_size"])
    return [v2.Resize(size, antialias=True), v2.CenterCrop(size)]


def _normalize(preprocess: Mapping) -> list[v2.Transform]:
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(preprocess["mean"]), std=list(preprocess["std"])),
    ]
