"""The LightningDataModule for split-folder data sets."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import Container, OmegaConf
from torch.utils.data import DataLoader, WeightedRandomSampler
from torchvision.transforms import v2

from lightcls.data.augment import crops_first
from lightcls.data.cache import build_cache, build_disk_cache, cache_path, disk_cache_path, load_cache
from lightcls.data.check import checked_layout
from lightcls.data.datasets import ImageDataset, TensorImageDataset
from lightcls.data.digits import BUILTIN
from lightcls.data.layout import Layout
from lightcls.data.preprocess import Preprocess
from lightcls.data.shards import Manifest, ShardImageDataset
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: The splits each Lightning stage uses.
BALANCE = ("none", "sampler", "loss")
STAGES = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


@dataclass(frozen=True)
class DeviceWork:
    """The training-batch work a DataModule leaves to the device, after the transfer: `decode` (encoded
    images and the device to a uint8 batch, augmented there), else `steps` (batched augment steps)."""

    steps: list[Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=list)
    decode: Callable[[Sequence[bytes], torch.device], torch.Tensor] | None = None


class SplitFolderDataModule(L.LightningDataModule):
    """Loaders of uint8 image batches for `root` in the split-folder layout (SPEC §1).

    Batches hold uint8 images resized to the input contract; the model normalizes them on its device.
    Small data sets are decoded once into a memory-mapped cache that later epochs and later runs reuse.
    Its hyperparameters (all but `augment`, with `root` made absolute) are saved in every checkpoint, so
    evaluation finds the same split from the checkpoint alone.

    Args:
        root: the data set folder.
        image_size: side of the square model input.
        channels: 1 (grayscale) or 3 (RGB).
        mean, std: per-channel normalization after scaling to [0, 1].
        batch_size: images per batch.
        num_workers: DataLoader processes; "auto": none for cached splits whose augment steps all draw per
            image (a batch is one gather and one augment in the main process, cheaper than sending it
            between processes), else one per CPU up to 8.
        augment: training-only transforms on uint8 tensors (torchvision.transforms.v2, lightcls.data.augment).
        builtin: name of an embedded data set written to `root` when it is missing.
        val_fraction, split_seed: the split made for a plain tree of class folders.
        name: the data set's name in logs and messages (default: the folder's name).
        cache: "auto" (splits up to `cache_max_mb` decoded in memory, bigger ones in the disk cache), true
            (decoded in memory), "disk" (the disk cache: images resized once to 1.15x the input side, in
            shards; later epochs decode those) or false (decode the files every epoch).
        cache_max_mb: the largest decoded size "auto" caches.
        cache_dir: where the decode cache lives (default `<root>/.lightcls_cache`).
        pin_memory: pin batches for faster copies to the GPU (default: when a GPU is present).
        prefetch_factor: batches each worker prepares ahead.
        on_broken: images that cannot be decoded: "fail" (one line naming them) or "skip" (warn, leave out).
        train_list, val_list, test_list: list files of `path label` lines (relative to `root`) that choose a
            split's images instead of its folder (PaddleClas's train_list.txt, mmpretrain's ann_file).
        drop_last: leave out each epoch's last, partial training batch (steady shapes: with
            model.compile=true a partial batch recompiles the model every epoch).
        hflip: the probability of a left-right flip that `augment` recipes use; 0 says a mirrored image
            changes its class (digits): an `augment` list that flips anyway is refused.
        device_augment: when training on a GPU and every `augment` step draws per image
            (lightcls.data.augment), augment batches on the device after the transfer; no effect on a CPU.
        balance: class imbalance help: "none", "sampler" (draw training images with class-balanced
            weights, with replacement) or "loss" (weight the loss by inverse class frequency).
    """

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int = 64,
        num_workers: int | str = "auto",
        augment: Sequence[v2.Transform] = (),
        builtin: str | None = None,
        val_fraction: float = 0.15,
        split_seed: int = 0,
        name: str | None = None,
        cache: bool | str = "auto",
        cache_max_mb: float = 2048,
        cache_dir: str | None = None,
        pin_memory: bool | None = None,
        prefetch_factor: int = 4,
        on_broken: str = "fail",
        train_list: str | None = None,
        val_list: str | None = None,
        test_list: str | None = None,
        drop_last: bool = False,
        hflip: float = 0.5,
        device_augment: bool = True,
        balance: str = "none",
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or channels not in (1, 3):
            raise LightclsError(f"data.channels must be 1 or 3, got {channels}")
        if builtin is not None and builtin not in BUILTIN:
            raise LightclsError(f"data.builtin={builtin!r}: choose one of {', '.join(BUILTIN)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise LightclsError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        whole = isinstance(num_workers, int) and not isinstance(num_workers, bool)
        if num_workers != "auto" and not (whole and num_workers >= 0):
            raise LightclsError(f"data.num_workers must be auto or a number >= 0, got {num_workers!r}")
        if cache not in ("auto", True, False, "disk"):
            raise LightclsError(f"data.cache must be auto, true, false or disk, got {cache!r}")
        if not isinstance(device_augment, bool):
            raise LightclsError(f"data.device_augment must be true or false, got {device_augment!r}")
        if balance not in BALANCE:
            raise LightclsError(f"data.balance must be one of {', '.join(BALANCE)}, got {balance!r}")
        number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
        if not (number and 0 <= val_fraction < 1):
            raise LightclsError(f"data.val_fraction must be in [0, 1), got {val_fraction!r}")
        self.save_hyperparameters(ignore=["augment"])
        for key, value in self.hparams.items():  # plain data: a checkpoint loads with weights_only=True
            if isinstance(value, Container):
                self.hparams[key] = OmegaConf.to_container(value, resolve=True)
        self.root = Path(root).expanduser()
        self.hparams["root"] = str(self.root.resolve())
        #: where the data is, in messages and metrics.json
        self.location = self.hparams["root"]
        self.name = name or self.root.name
        self.preprocess = Preprocess.from_dict(
            {"image_size": image_size, "channels": channels, "mean": mean, "std": std}
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = list(augment)
        flips = [step for step in self.augment if _flip_probability(step)]
        if hflip == 0 and flips:
            raise LightclsError(
                f"data.augment flips images left-right (p={_flip_probability(flips[0]):g}) but data.hflip=0 "
                "says a mirrored image changes its class here; remove the flip, or set data.hflip=P if "
                "mirrors are fine"
            )
        self.builtin = builtin
        self.val_fraction = float(val_fraction)
        self.split_seed = split_seed
        self.cache = cache
        self.cache_max_mb = cache_max_mb
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else self.root / ".lightcls_cache"
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.prefetch_factor = prefetch_factor
        self.on_broken = on_broken
        self.lists = {"train": train_list, "val": val_list, "test": test_list}
        self.drop_last = bool(drop_last)
        self.device_augment = device_augment
        self.balance = balance
        #: the augment steps that run on the device after the transfer (set up for a GPU fit)
        self.device_steps: list[Any] = []
        self.datasets: dict[str, ImageDataset | TensorImageDataset] = {}

    @classmethod
    def from_provenance(cls, data: Mapping[str, Any], **overrides: Any) -> SplitFolderDataModule:
        """The DataModule a checkpoint was trained with (its saved hyperparameters), without augmentation;
        `overrides` (e.g. `root`, `batch_size`) replace saved values."""
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "augment"}
        values = {k: v for k, v in {**data, **overrides}.items() if k in known and v is not None}
        return cls(**values)

    def prepare_data(self) -> None:
        """Write the embedded data set on first use; decode the cached splits whose files changed."""
        for split in self._cached_splits():
            path = self._cache_path(split)
            if not path.is_file():
                build_cache(path, self.layout.splits[split], self.preprocess, self._workers(False))
        for split in self._disk_cached_splits():
            self._disk_cache(split)

    @cached_property
    def layout(self) -> Layout:
        """The data set on disk, read and checked once (every image decodable; see lightcls.data.check)."""
        if self.builtin and not (self.root / "classes.txt").is_file():
            log.info("writing the embedded %s data set to %s", self.builtin, self.root)
            BUILTIN[self.builtin](self.root)
        try:
            return checked_layout(self.root, self.val_fraction, self.split_seed, self.on_broken, self.lists)
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
        """Build the datasets of the stage's splits that exist (all of them when `stage` is None)."""
        trainer = getattr(self, "trainer", None)
        on_gpu = trainer is not None and trainer.strategy.root_device.type == "cuda"
        batched = all(getattr(step, "batched", False) for step in self.augment)
        if stage == "fit" and on_gpu and self.device_augment and batched and self.augment:
            self.device_steps = list(self.augment)
            log.info("augmenting training batches on %s", trainer.strategy.root_device)
        for split in STAGES.get(stage or "", SPLITS):
            if self.layout.has(split):
                self.setup_split(split)

    def setup_split(self, split: str) -> None:
        """Build `split`'s dataset: from the decode cache (built if missing), or decoding files on access."""
        if split in self.datasets:
            return
        samples = self.layout.splits[split]
        if split in self._cached_splits():
            path = self._cache_path(split)
            if not path.is_file():
                build_cache(path, samples, self.preprocess, self._workers(False))
            labels = [label for _, label in samples]
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
                samples, self.preprocess.channels, transform, min_side=self.preprocess.image_size
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
        )

    def device_work(self) -> DeviceWork:
        """What the model's batch preprocessor does to training batches on the device (after `setup`)."""
        return DeviceWork(steps=list(self.device_steps))

    def class_counts(self) -> list[int]:
        """Training images per class (index i: label i)."""
        counts = [0] * len(self.classes)
        for _, label in self.layout.splits["train"]:
            counts[label] += 1
        return counts

    def class_weights(self) -> list[float]:
        """Inverse class frequency of the training split, scaled to average 1 over its images."""
        counts = self.class_counts()
        total = sum(counts)
        return [total / (len(counts) * c) if c else 0.0 for c in counts]

    def balanced_sampler(self) -> WeightedRandomSampler:
        """Draws each epoch's training images with replacement, every class equally likely."""
        counts = self.class_counts()
        weights = [1.0 / counts[label] for _, label in self.layout.splits["train"]]
        return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self.loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader | list:
        return self.loader("test") if "test" in self.datasets else []

    def _loader_steps(self, split: str) -> list[Any]:
        """The augment steps the loader applies to `split` (none where the device does them)."""
        return list(self.augment) if split == "train" and not self.device_steps else []

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
        if self.cache not in ("auto", "disk") or not self._cache_dir_writable():
            return []
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

    def _workers(self, serial: bool) -> int:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if self.num_workers == "auto":
            return 0 if serial else min(cpus, 8)
        return min(self.num_workers, cpus)


def _flip_probability(step: Any) -> float:
    """The chance `step` mirrors an image left-right (torchvision's or lightcls's flip; 0 for others)."""
    if type(step).__name__ != "RandomHorizontalFlip":
        return 0.0
    return float(getattr(step, "p", 0.0))
