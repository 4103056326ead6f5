"""Datasets of (uint8 image, label): decoded from files on access, or gathered from the decode cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from lightcls.data.decode import load_image


class ImageDataset(Dataset):
    """(image tensor, label) for each (file, label) sample, decoded on access."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        channels: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        min_side: int | None = None,
    ) -> None:
        self.samples = list(samples)
        self.channels = channels
        self.transform = transform
        self.min_side = min_side  # large JPEGs decode at reduced scale, short side kept >= this

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = load_image(path, self.channels, self.min_side)
        return (self.transform(image) if self.transform else image), label


class TensorImageDataset(Dataset):
    """(image, label) from uint8 images already decoded and resized (the decode cache).

    A DataLoader fetches a whole batch at once (`__getitems__`): one gather from the cache, and
    augmentations that all draw per image (lightcls.data.augment) applied to the batch in one go.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: Sequence[int],
        augment: Sequence[Callable[[torch.Tensor], torch.Tensor]] = (),
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = list(labels)
        self.augment = list(augment)
        self.batched = all(getattr(t, "batched", False) for t in self.augment)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].clone()
        for transform in self.augment:
            image = transform(image)
        return image, self.labels[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        if not self.batched:
            return [self[i] for i in indices]
        images = self.images[torch.as_tensor(indices)]
        for transform in self.augment:
            images = transform(images)
        return list(zip(images, (self.labels[i] for i in indices), strict=True))
