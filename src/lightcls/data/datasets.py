"""Datasets of (uint8 image, label): decoded from files on access, or gathered from the decode cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from lightcls.data.annotations import Label
from lightcls.data.decode import load_image


def targets(labels: Sequence[Label], num_classes: int) -> list[int] | torch.Tensor:
    """What a loader yields as labels: class indices as they are; multi-label tuples as multi-hot float rows
    (N, classes), so batches stack and the loss takes them."""
    if not any(isinstance(label, tuple) for label in labels):
        return list(labels)  # type: ignore[arg-type]
    hot = torch.zeros(len(labels), num_classes)
    for row, label in enumerate(labels):
        hot[row, list(label)] = 1.0  # type: ignore[arg-type]
    return hot


class ImageDataset(Dataset):
    """(image tensor, target) for each (file, label) sample, decoded on access (a multi-label sample's
    target: its multi-hot row over `num_classes`)."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, Label]],
        channels: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        min_side: int | None = None,
        num_classes: int = 0,
    ) -> None:
        self.samples = list(samples)
        self.channels = channels
        self.transform = transform
        self.min_side = min_side  # large JPEGs decode at reduced scale, short side kept >= this
        self.targets = targets([label for _, label in self.samples], num_classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        path = self.samples[index][0]
        image = load_image(path, self.channels, self.min_side)
        return (self.transform(image) if self.transform else image), self.targets[index]


class TensorImageDataset(Dataset):
    """(image, label) from uint8 images already decoded and resized (the decode cache); `labels` are class
    indices, or multi-hot rows (N, classes) for a multi-label set.

    A DataLoader fetches a whole batch at once (`__getitems__`): one gather from the cache (or a first
    augment step's own `gather`, e.g. RandomCrop's crops cut straight from a padded copy), and
    augmentations that all draw per image (lightcls.data.augment) applied to the batch in one go, handed
    over as the finished (images, labels) batch (`collate` passes it through).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: Sequence[int] | torch.Tensor,
        augment: Sequence[Callable[[torch.Tensor], torch.Tensor]] = (),
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels if isinstance(labels, torch.Tensor) else list(labels)
        self._label_tensor = torch.as_tensor(self.labels)
        self.augment = list(augment)
        self.batched = all(getattr(t, "batched", False) for t in self.augment)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].clone()
        for transform in self.augment:
            image = transform(image)
        return image, self.labels[index]

    def __getitems__(self, indices: list[int]) -> Batch | list[tuple[torch.Tensor, int]]:
        if not self.batched:
            return [self[i] for i in indices]
        index = torch.as_tensor(indices)
        steps = self.augment
        if steps and hasattr(steps[0], "gather"):  # a step that cuts its output straight from the cache
            images, steps = steps[0].gather(self.images, index), steps[1:]
        else:
            images = self.images.index_select(0, index)  # ~10x faster than self.images[index] on the CPU
        for transform in steps:
            images = transform(images)
        return Batch((images, self._label_tensor.index_select(0, index)))


class Batch(tuple):
    """A batch a dataset assembled itself (images, labels): `collate` hands it on as it is."""


def collate(samples: Batch | list[Any]) -> Any:
    """A DataLoader's collate_fn: a `Batch` as it is (no unbinding and restacking), else torch's default."""
    if isinstance(samples, Batch):
        return tuple(samples)
    return default_collate(samples)
