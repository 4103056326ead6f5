"""The LightningDataModule for shards written by `lightcls-data pack` (data=streaming)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from lightcls.data.base import DeviceWork, ImageDataModule
from lightcls.data.layout import Layout
from lightcls.data.shards import Manifest, ShardDataset, ShardLoader, decode_images, is_url
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)
# each worker of a ShardLoader takes its own batches, so the length Lightning doubts is exact
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")


class StreamingDataModule(ImageDataModule):
    """Loaders of uint8 image batches from shards at `root` (a folder, or an fsspec URL such as
    s3://bucket/set, which needs that file system's fsspec package, e.g. s3fs).

    Classes, labels and images are the packed split folder's; it takes the arguments every data source
    takes (lightcls.data.base.ImageDataModule) and `device_decode`: on a GPU, send training JPEGs encoded
    and decode them there. Each epoch's order is drawn from the run's seed and the epoch, each DDP rank
    reads its own part, and a run resumed from a mid-epoch checkpoint goes on where it stopped.
    """

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        device_decode: bool = False,
        **common: Any,
    ) -> None:
        if not isinstance(device_decode, bool):
            raise LightclsError(f"data.device_decode must be true or false, got {device_decode!r}")
        if common.get("balance") == "sampler":
            raise LightclsError("data.balance=sampler: not with data=streaming; use data.balance=loss")
        super().__init__(root, image_size, channels, mean, std, **common)
        self.device_decode = device_decode
        #: training batches arrive as encoded images and are decoded on the device (set up for a GPU fit)
        self.decode_device = False
        if is_url(root):
            self.hparams["root"] = self.location = str(root)
        #: the seed of each epoch's order: the run's (taken as the first split is set up), on every rank
        self.seed: int | None = None

    @cached_property
    def manifest(self) -> Manifest:
        """The shard manifest, read once."""
        return Manifest.read(self.location)

    @cached_property
    def layout(self) -> Layout:
        """Classes and (image key, label) pairs per split, from the manifest."""
        manifest = self.manifest
        if manifest.short_side and manifest.short_side < self.preprocess.image_size:
            log.warning(
                "the shards were packed at short side %d, smaller than data.image_size=%d: images are "
                "enlarged; pack again with short_side=%d or more",
                manifest.short_side,
                self.preprocess.image_size,
                self.preprocess.image_size,
            )
        splits = {
            split: [(Path(f"{split}/{i}"), int(label)) for i, label in enumerate(rows[:, 3])]
            for split, rows in manifest.samples.items()
        }
        return Layout(Path(self.location), manifest.classes, splits)

    def setup(self, stage: str | None = None) -> None:
        """As the split-folder DataModule; with `device_decode` in a GPU fit, the loader sends the training
        images encoded and the model's batch preprocessor decodes and augments them after the transfer."""
        trainer = getattr(self, "trainer", None)
        on_gpu = trainer is not None and trainer.strategy.root_device.type == "cuda"
        self.decode_device = stage == "fit" and on_gpu and self.device_decode
        super().setup(stage)
        if self.decode_device:
            self.device_steps = []  # the device decode runs every augment step
            log.info("decoding training JPEGs on %s", trainer.strategy.root_device)

    def device_work(self) -> DeviceWork:
        """With `device_decode` in a GPU fit: decode, resize and augment training batches on the device."""
        if not self.decode_device:
            return super().device_work()
        return DeviceWork(decode=self._decode_on_device)

    def _decode_on_device(self, encoded: Sequence[bytes], device: torch.device) -> torch.Tensor:
        return decode_images(encoded, self.preprocess, self.augment, device)

    def prepare_data(self) -> None:
        """Check that every shard is there at the size written and every label names a class (before any
        training)."""
        for split in self.manifest.shards:
            self.manifest.check_labels(split)
            self.manifest.check_sizes(split)

    def setup_split(self, split: str) -> None:
        """`split`'s dataset: this rank's share of the split's shards."""
        if split in self.datasets:
            return
        if self.seed is None:  # seeded by now: seed_everything, and Lightning's again on each DDP rank
            self.seed = torch.initial_seed()
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self.datasets[split] = ShardDataset(
            self.manifest,
            split,
            self.preprocess,
            self.batch_size,
            steps=self._loader_steps(split),
            shuffle=split == "train",
            drop_last=self.drop_last and split == "train",
            seed=self.seed,
            rank=rank,
            world_size=world,
            encoded=self.decode_device and split == "train",
        )

    def loader(self, split: str, shuffle: bool = False) -> ShardLoader:
        """The loader of `split` (after `setup`); its order is the dataset's (`shuffle` is for training)."""
        if split not in self.datasets:
            raise LightclsError(f"split={split}: {self.location} has no {split} images")
        return ShardLoader(
            self.datasets[split],
            epoch=self._epoch,
            num_workers=self._workers(False),
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
        )

    def _epoch(self) -> int:
        """The epoch a new pass of the loader is for: Lightning's count of epochs done (on a resume from
        an end-of-epoch checkpoint the iterator is made before `current_epoch` moves on)."""
        trainer = getattr(self, "trainer", None)
        return trainer.fit_loop.epoch_progress.current.processed if trainer is not None else 0
