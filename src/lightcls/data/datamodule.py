"""The LightningDataModule for split-folder data sets."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from lightcls.data.digits import write_digits
from lightcls.data.images import ImageDataset
from lightcls.data.layout import Layout, read_layout
from lightcls.data.transforms import eval_transform, train_transform
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

BUILTIN = {"digits": write_digits}


class SplitFolderDataModule(L.LightningDataModule):
    """Loaders for `root` in the split-folder layout (SPEC §1), preprocessed to one input contract.

    Args:
        root: the data set folder.
        image_size: side of the square model input.
        channels: 1 (grayscale) or 3 (RGB).
        mean, std: per-channel normalization after scaling to [0, 1].
        batch_size, num_workers: DataLoader settings.
        augment: training-only transforms on uint8 tensors (torchvision.transforms.v2).
        builtin: name of an embedded data set written to `root` when it is missing.
        val_fraction, split_seed: the split made for a plain tree of class folders.
    """

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int = 64,
        num_workers: int = 0,
        augment: Sequence[v2.Transform] = (),
        builtin: str | None = None,
        val_fraction: float = 0.15,
        split_seed: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise LightclsError(f"data.channels must be 1 or 3, got {channels}")
        if builtin is not None and builtin not in BUILTIN:
            raise LightclsError(f"data.builtin={builtin!r}: choose one of {', '.join(BUILTIN)}")
        self.root = Path(root).expanduser()
        self.name = name or self.root.name
        self.preprocess = {
            "image_size": int(image_size),
            "channels": int(channels),
            "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
        }
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = list(augment)
        self.builtin = builtin
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.datasets: dict[str, ImageDataset] = {}

    def prepare_data(self) -> None:
        """Write the embedded data set to `root` on first use."""
        if self.builtin and not (self.root / "classes.txt").is_file():
            log.info("writing the embedded %s data set to %s", self.builtin, self.root)
            BUILTIN[self.builtin](self.root)

    @cached_property
    def layout(self) -> Layout:
        """The data set on disk, read and checked once."""
        try:
            return read_layout(self.root, self.val_fraction, self.split_seed)
        except LightclsError as err:
            if not self.root.exists():
                raise LightclsError(f"{err}; or set data.root=/path/to/{self.name}") from None
            raise

    @property
    def classes(self) -> list[str]:
        """Class names; index i is label i."""
        return self.layout.classes

    @property
    def has_val(self) -> bool:
        return self.layout.has("val")

    @property
    def has_test(self) -> bool:
        return self.layout.has("test")

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of the splits that exist."""
        channels = self.preprocess["channels"]
        plain = eval_transform(self.preprocess)
        augmented = train_transform(self.preprocess, self.augment)
        for split in ("train", "val", "test"):
            if self.layout.has(split) and split not in self.datasets:
                transform = augmented if split == "train" else plain
                self.datasets[split] = ImageDataset(self.layout.splits[split], channels, transform)

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        workers = min(self.num_workers, os.cpu_count() or 1)
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader | list:
        return self._loader("test") if "test" in self.datasets else []
