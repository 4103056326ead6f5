"""The LightningDataModule for split-folder data sets (and plain class folders, list files)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, WeightedRandomSampler
from torchvision.transforms import v2

from lightcls.data.augment import crops_first
from lightcls.data.base import SPLITS, ImageDataModule
from lightcls.data.cache import build_cache, build_disk_cache, cache_path, disk_cache_path, load_cache
from lightcls.data.check import checked_layout
from lightcls.data.datasets import ImageDataset, TensorImageDataset, collate, targets
from lightcls.data.digits import BUILTIN
from lightcls.data.layout import Layout
from lightcls.data.shards import Manifest, ShardImageDataset
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)


class SplitFolderDataModule(ImageDataModule):
    """Loaders of uint8 image batches for `root` in the split-folder layout (SPEC §1), a plain tree of
    class folders (split once, seeded, written down) or list files.

    Small data sets are decoded once into a memory-mapped cache that later epochs and later runs reuse.
    Its own arguments, after those every data source takes (lightcls.data.base.ImageDataModule):

    Args:
        root: the data set folder.
        image_size, channels, mean, std: the input contract (lightcls.data.base.ImageDataModule).
        builtin: name of an embedded data set written to `root` when it is missing.
        val_fraction, split_seed: the split made for a plain tree of class folders.
        cache: "auto" (splits up to `cache_max_mb` decoded in memory, bigger ones in the disk cache), true
            (decoded in memory), "disk" (the disk cache: images resized once to 1.15x the input side, in
            shards; later epochs decode those) or false (decode the files every epoch). With "auto"
            workers, a cached split whose augment steps all draw per image is served from the main process.
        cache_max_mb: the largest decoded size "auto" caches.
        cache_dir: where the decode cache lives (default `<root>/.lightcls_cache`).
        on_broken: images that cannot be decoded: "fail" (one line naming them) or "skip" (warn, leave out).
        train_list, val_list, test_list: annotation files (relative to `root`) that choose a split's images
            instead of its folder: `path label` lines (PaddleClas's train_list.txt, mmpretrain's ann_file), or
            a multi-label format (lightcls.data.annotations: CSV, mmpretrain JSON, PaddleClas multi-hot).
        label_delim: what separates the class names in a CSV's labels column (None: whitespace).
    """

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        builtin: str | None = None,
        val_fraction: float = 0.15,
        split_seed: int = 0,
        cache: bool | str = "auto",
        cache_max_mb: float = 2048,
        cache_dir: str | None = None,
        on_broken: str = "fail",
        train_list: str | None = None,
        val_list: str | None = None,
        test_list: str | None = None,
        label_delim: str | None = None,
        **common: Any,
    ) -> None:
        if builtin is not None and builtin not in BUILTIN:
            raise LightclsError(f"data.builtin={builtin!r}: choose one of {', '.join(BUILTIN)}")
        if cache not in ("auto", True, False, "disk"):
            raise LightclsError(f"data.cache must be auto, true, false or disk, got {cache!r}")
        number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
        if not (number and 0 <= val_fraction < 1):
            raise LightclsError(f"data.val_fraction must be in [0, 1), got {val_fraction!r}")
        super().__init__(root, image_size, channels, mean, std, **common)
        self.builtin = builtin
        self.val_fraction = float(val_fraction)
        self.split_seed = split_seed
        self.cache = cache
        self.cache_max_mb = cache_max_mb
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else self.root / ".lightcls_cache"
        self.on_broken = on_broken
        self.lists = {"train": train_list, "val": val_list, "test": test_list}
        self.label_delim = label_delim

    def prepare_data(self) -> None:
        """Write the embedded data set on first use; decode the cached splits whose files changed."""
        for split in self._cached_splits():
            path = self._cache_path(split)
            if not path.is_file():
                build_cache(
                    path, self.layout.splits[split], self.preprocess, self._workers(False), self.classes
                )
        for split in self._disk_cached_splits():
            self._disk_cache(split)

    @cached_property
    def layout(self) -> Layout:
        """The data set on disk, read and checked once (every image decodable; see lightcls.data.check)."""
        if self.builtin and not (self.root / "classes.txt").is_file():
            log.info("writing the embedded %s data set to %s", self.builtin, self.root)
            BUILTIN[self.builtin](self.root)
        try:
            return checked_layout(
                self.root, self.val_fraction, self.split_seed, self.on_broken, self.lists, self.label_delim
            )
        except LightclsError as err:
            if not self.root.exists():
                raise LightclsError(f"{err}; or set data.root=/path/to/{self.name}") from None
            raise

    def setup_split(self, split: str) -> None:
        """Build `split`'s dataset: from the decode cache (built if missing), or decoding files on access."""
        if split in self.datasets:
            return
        samples = self.layout.splits[split]
        if split in self._cached_splits():
            path = self._cache_path(split)
            if not path.is_file():
                build_cache(path, samples, self.preprocess, self._workers(False), self.classes)
            labels = targets([label for _, label in samples], len(self.classes))
            self.datasets[split] = TensorImageDataset(load_cache(path), labels, self._loader_steps(split))
        else:
            resize = self.preprocess.resize()
            steps = self._loader_steps(split)
            transform = v2.Compose([resize, *steps]) if steps else resize
            if crops_first(steps, self.preprocess.image_size):  # the crop draws from the whole picture
                transform = v2.Compose(steps)
            if split in self._disk_cached_splits():
                manifest = Manifest.read(str(self._disk_cache(split)))
                self.datasets[split] = ShardImageDataset(manifest, split, self.preprocess, transform)
                return
            self.datasets[split] = ImageDataset(
                samples,
                self.preprocess.channels,
                transform,
                min_side=self.preprocess.resize_side,
                num_classes=len(self.classes),
            )

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        """The loader of `split` (after `setup`)."""
        if split not in self.datasets:
            raise LightclsError(f"split={split}: {self.layout.root} has no {split} images")
        dataset = self.datasets[split]
        # a cached split is one gather a batch in the main process, unless an augment step works per image
        serial = isinstance(dataset, TensorImageDataset) and (dataset.batched or not dataset.augment)
        workers = self._workers(serial)
        sampler = self.balanced_sampler() if split == "train" and self.balance == "sampler" else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
            pin_memory=self.pin_memory,
            drop_last=self.drop_last and split == "train",
            collate_fn=collate,
        )

    def balanced_sampler(self) -> WeightedRandomSampler:
        """Draws each epoch's training images with replacement, every class equally likely."""
        if self.layout.multilabel:
            raise LightclsError(
                "data.balance=sampler draws images by their class; a multi-label image has several: use "
                "data.balance=loss (each label's positives weighted by its negatives/positives ratio)"
            )
        counts = self.class_counts()
        weights = [1.0 / counts[label] for _, label in self.layout.splits["train"]]
        return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)

    def _cached_splits(self) -> list[str]:
        """The splits to serve from the decode cache."""
        splits = [s for s in SPLITS if self.layout.has(s)]
        if not self._cache_dir_writable():
            return []
        if self.cache == "auto":
            return splits if self._fits_in_memory(splits) else []
        return splits if self.cache is True else []

    def _disk_cached_splits(self) -> list[str]:
        """The splits to serve from the disk cache (resized once)."""
        splits = [s for s in SPLITS if self.layout.has(s)]
        if self.cache not in ("auto", "disk") or self.layout.multilabel or not self._cache_dir_writable():
            return []  # shards hold one class index per image
        return [] if self.cache == "auto" and self._fits_in_memory(splits) else splits

    def _fits_in_memory(self, splits: list[str]) -> bool:
        total = sum(len(self.layout.splits[s]) * self.preprocess.bytes_per_image() for s in splits)
        return total <= self.cache_max_mb * 2**20

    def _disk_cache(self, split: str) -> Path:
        """`split`'s disk cache folder, built first when missing."""
        samples = self.layout.splits[split]
        folder = disk_cache_path(self.cache_dir, split, samples, self.preprocess)
        if not folder.is_dir():
            build_disk_cache(folder, split, samples, self.classes, self.preprocess, self._workers(False))
        return folder

    def _cache_dir_writable(self) -> bool:
        existing = next(p for p in (self.cache_dir, *self.cache_dir.parents) if p.exists())
        if os.access(existing, os.W_OK):
            return True
        if self.cache:
            log.warning("cannot write the decode cache in %s: decoding images every epoch", self.cache_dir)
        return False

    def _cache_path(self, split: str) -> Path:
        return cache_path(self.cache_dir, split, self.layout.splits[split], self.preprocess)
