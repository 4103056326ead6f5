"""What every data source's LightningDataModule shares: the input contract, batches, workers, augmentation
and the device work it leaves to the model (folder data: datamodule.py; shards: streaming.py)."""

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
from torch.utils.data import Dataset
from torchvision.transforms import v2

from lightcls.data.augment import RandomCrop, RandomResizedCrop
from lightcls.data.layout import Layout
from lightcls.data.preprocess import INTERPOLATIONS, Preprocess
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
BALANCE = ("none", "sampler", "loss")
#: The splits each Lightning stage uses.
STAGES = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


@dataclass(frozen=True)
class DeviceWork:
    """The training-batch work a DataModule leaves to the device, after the transfer: `decode` (encoded
    images and the device to a uint8 batch, augmented there), else `steps` (batched augment steps)."""

    steps: list[Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=list)
    decode: Callable[[Sequence[bytes], torch.device], torch.Tensor] | None = None


class ImageDataModule(L.LightningDataModule):
    """Loaders of uint8 image batches resized to the input contract (the model normalizes them on its
    device). A data source says where its classes and splits are (`layout`), builds a split's dataset
    (`setup_split`) and its loader (`loader`); its hyperparameters (all but `augment`) are saved in every
    checkpoint, so evaluation finds the same data from the checkpoint alone.

    Args:
        root: where the data set is.
        image_size: side of the square model input.
        channels: 1 (grayscale) or 3 (RGB).
        mean, std: per-channel normalization after scaling to [0, 1].
        resize_size, interpolation: evaluation resizes the short side to `resize_size` (None: image_size)
            with `interpolation` (bilinear, bicubic, nearest), then takes the center `image_size` square.
        batch_size: images per batch.
        num_workers: loader processes; "auto": none where a batch is one gather in the main process,
            else one per CPU up to 8.
        augment: training-only transforms on uint8 tensors (torchvision.transforms.v2, lightcls.data.augment).
        name: the data set's name in logs and messages (default: the folder's name).
        pin_memory: pin batches for faster copies to the GPU (default: when a GPU is present).
        prefetch_factor: batches each worker prepares ahead.
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
        name: str | None = None,
        pin_memory: bool | None = None,
        prefetch_factor: int = 4,
        drop_last: bool = False,
        hflip: float = 0.5,
        device_augment: bool = True,
        balance: str = "none",
        resize_size: int | None = None,
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or channels not in (1, 3):
            raise LightclsError(f"data.channels must be 1 or 3, got {channels}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise LightclsError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        whole = isinstance(num_workers, int) and not isinstance(num_workers, bool)
        if num_workers != "auto" and not (whole and num_workers >= 0):
            raise LightclsError(f"data.num_workers must be auto or a number >= 0, got {num_workers!r}")
        if not isinstance(device_augment, bool):
            raise LightclsError(f"data.device_augment must be true or false, got {device_augment!r}")
        side = isinstance(resize_size, int) and not isinstance(resize_size, bool)
        if resize_size is not None and not (side and resize_size >= image_size):
            raise LightclsError(
                f"data.resize_size must be a whole number >= data.image_size ({image_size}) or null, "
                f"got {resize_size!r}"
            )
        if interpolation not in INTERPOLATIONS:
            raise LightclsError(
                f"data.interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}"
            )
        if balance not in BALANCE:
            raise LightclsError(f"data.balance must be one of {', '.join(BALANCE)}, got {balance!r}")
        self.save_hyperparameters(ignore=["augment"])  # a subclass's own arguments too (its __init__ frame)
        for key, value in self.hparams.items():  # plain data: a checkpoint loads with weights_only=True
            if isinstance(value, Container):
                self.hparams[key] = OmegaConf.to_container(value, resolve=True)
        self.root = Path(root).expanduser()
        self.hparams["root"] = str(self.root.resolve())
        #: where the data is, in messages and metrics.json
        self.location = self.hparams["root"]
        self.name = name or self.root.name
        self.preprocess = Preprocess.from_dict(
            {
                "image_size": image_size,
                "channels": channels,
                "mean": mean,
                "std": std,
                "resize_size": resize_size,
                "interpolation": interpolation,
            }
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
        _check_crops(self.augment, self.preprocess.image_size)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.prefetch_factor = prefetch_factor
        self.drop_last = bool(drop_last)
        self.device_augment = device_augment
        self.balance = balance
        #: the augment steps that run on the device after the transfer (set up for a GPU fit)
        self.device_steps: list[Any] = []
        self.datasets: dict[str, Dataset] = {}

    @classmethod
    def arguments(cls) -> set[str]:
        """The names this DataModule's constructor takes (its own and its base's)."""
        names: set[str] = set()
        for klass in cls.__mro__:
            if issubclass(klass, ImageDataModule):
                names |= set(inspect.signature(klass.__init__).parameters)
        return names - {"self", "common"}

    @classmethod
    def from_provenance(cls, data: Mapping[str, Any], **overrides: Any) -> ImageDataModule:
        """The DataModule a checkpoint was trained with (its saved hyperparameters), without augmentation;
        `overrides` (e.g. `root`, `batch_size`) replace saved values."""
        known = cls.arguments() - {"augment"}
        return cls(**{k: v for k, v in {**data, **overrides}.items() if k in known and v is not None})

    @cached_property
    def layout(self) -> Layout:
        """Classes and (image, label) pairs per split."""
        raise NotImplementedError

    def setup_split(self, split: str) -> None:
        """Build `split`'s dataset (once)."""
        raise NotImplementedError

    def loader(self, split: str, shuffle: bool = False) -> Any:
        """The loader of `split` (after `setup`)."""
        raise NotImplementedError

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

    def device_work(self) -> DeviceWork:
        """What the model's batch preprocessor does to training batches on the device (after `setup`)."""
        return DeviceWork(steps=list(self.device_steps))

    @property
    def task(self) -> str:
        """ "multilabel" when the data gives an image several labels (its annotation files say so), else
        "multiclass"."""
        return "multilabel" if self.layout.multilabel else "multiclass"

    def class_counts(self) -> list[int]:
        """Training images per class (index i: label i; a multi-label image counts for each of its labels)."""
        return self.layout.class_counts("train")

    def class_weights(self) -> list[float]:
        """Inverse class frequency of the training split, scaled to average 1 over its images; for a
        multi-label set, each class's negatives/positives ratio (BCE's `pos_weight`)."""
        counts = self.class_counts()
        if self.layout.multilabel:
            images = len(self.layout.splits["train"])
            return [(images - c) / c if c else 1.0 for c in counts]
        total = sum(counts)
        return [total / (len(counts) * c) if c else 0.0 for c in counts]

    def train_dataloader(self) -> Any:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self.loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> Any:
        return self.loader("test") if "test" in self.datasets else []

    def _loader_steps(self, split: str) -> list[Any]:
        """The augment steps the loader applies to `split` (none where the device does them)."""
        return list(self.augment) if split == "train" and not self.device_steps else []

    def _workers(self, serial: bool) -> int:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if self.num_workers == "auto":
            return 0 if serial else min(cpus, 8)
        return min(self.num_workers, cpus)


def _check_crops(steps: list[Any], image_size: int) -> None:
    """A RandomCrop larger than what reaches it (the input size, or an earlier crop's, plus its padding) is
    refused in one line before any run, not at the first training batch."""
    side = image_size
    for step in steps:
        if isinstance(step, RandomCrop) and step.size > side + 2 * step.padding:
            raise LightclsError(
                f"data.augment: RandomCrop(size={step.size}, padding={step.padding}) of a {side}x{side} "
                f"image; its size must be at most {side + 2 * step.padding} (the image and twice the padding)"
            )
        if isinstance(step, (RandomCrop, RandomResizedCrop)):
            side = step.size


def _flip_probability(step: Any) -> float:
    """The chance `step` mirrors an image left-right (torchvision's or lightcls's flip; 0 for others)."""
    if type(step).__name__ != "RandomHorizontalFlip":
        return 0.0
    return float(getattr(step, "p", 0.0))
