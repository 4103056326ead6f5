"""Datasets over shards: a split's batches in a seeded per-epoch order per rank, or its images by index."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from lightcls.data.augment import crops_first
from lightcls.data.decode import decode_bytes
from lightcls.data.preprocess import Preprocess
from lightcls.data.shards.manifest import LABEL, SHARD, Manifest
from lightcls.data.shards.reader import ShardReader


class ShardDataset(IterableDataset):
    """Batches of (uint8 images, labels) of one split, this rank's share of a seeded order per epoch.

    The order of an epoch is one permutation of the shards, and of the images within each shard, drawn
    from (seed, epoch): every rank draws the same one and takes its own contiguous part (padded with the
    first images, as DistributedSampler does, so every rank gets as many batches), each DataLoader worker
    every n-th batch of it, so the loader yields the batches in order. `skip` leaves out the epoch's first
    batches (a resumed run).
    """

    def __init__(
        self,
        manifest: Manifest,
        split: str,
        preprocess: Preprocess,
        batch_size: int,
        steps: Sequence[Callable[[torch.Tensor], torch.Tensor]] = (),
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        encoded: bool = False,
    ) -> None:
        self.reader = ShardReader(manifest.root, manifest.shards[split])
        self.encoded = encoded  # batches of the images' bytes (decoded on the device: decode_images)
        self.rows = manifest.samples[split]
        self.preprocess = preprocess
        self.resize = preprocess.resize()
        self.batch_size = batch_size
        self.steps = list(steps)
        self.batched = all(getattr(s, "batched", False) for s in self.steps)
        self.crop_first = crops_first(self.steps, preprocess.image_size)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.skip = 0

    def order(self, epoch: int) -> np.ndarray:
        """Every image's row index in the epoch's order (the same on every rank)."""
        if not self.shuffle:
            return np.arange(len(self.rows))
        rng = np.random.default_rng([self.seed, epoch])
        shards = self.rows[:, SHARD]  # in shard order, as written
        count = int(shards[-1]) + 1 if len(shards) else 0
        bounds = np.searchsorted(shards, np.arange(count + 1))
        parts = [rng.permutation(np.arange(bounds[s], bounds[s + 1])) for s in rng.permutation(count)]
        return np.concatenate(parts) if parts else np.arange(0)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of row indices in `epoch`."""
        order = self.order(epoch)
        if self.world_size > 1:
            per_rank = -(-len(order) // self.world_size)
            order = np.resize(order, per_rank * self.world_size)  # repeats from the start, as often as needed
            order = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return [order[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __len__(self) -> int:
        per_rank = -(-len(self.rows) // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        batches = self.batches(self.epoch)
        for b in range(self.skip + worker, len(batches), workers):
            yield self.load(batches[b])

    def load(self, indices: np.ndarray) -> tuple[torch.Tensor | EncodedImages, torch.Tensor]:
        """Decode, resize and augment the images of `indices` into one batch (or, `encoded`, their bytes)."""
        labels = torch.as_tensor(self.rows[indices, LABEL])
        if self.encoded:
            return EncodedImages(self.reader.read(self.rows[int(i)])[0] for i in indices), labels
        steps = self.steps
        if self.crop_first:  # each whole picture to the crop, with no resize before it
            images = [steps[0](decode_row(self.reader, self.rows[int(i)], self.preprocess)) for i in indices]
            steps = steps[1:]
        else:
            images = [self.image(int(i)) for i in indices]
        if self.batched:
            batch = torch.stack(images)
            for step in steps:
                batch = step(batch)
        else:
            for step in steps:
                images = [step(image) for image in images]
            batch = torch.stack(images)
        return batch, labels

    def image(self, index: int) -> torch.Tensor:
        """The image of row `index`, decoded (at reduced scale where that is enough) and resized."""
        return self.resize(decode_row(self.reader, self.rows[index], self.preprocess))


def decode_row(reader: ShardReader, row: np.ndarray, preprocess: Preprocess) -> torch.Tensor:
    """The image of a manifest row as load_image decodes a file (at reduced scale where that is enough)."""
    data, name = reader.read(row)
    return decode_bytes(data, preprocess.channels, preprocess.resize_side, name)


class ShardImageDataset(Dataset):
    """(image tensor, label) for each row of a split's shards, by index (the folder DataModule's disk
    cache: rows in the split's own order)."""

    def __init__(
        self,
        manifest: Manifest,
        split: str,
        preprocess: Preprocess,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.reader = ShardReader(manifest.root, manifest.shards[split])
        self.rows = manifest.samples[split]
        self.preprocess = preprocess
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = decode_row(self.reader, self.rows[index], self.preprocess)
        return (self.transform(image) if self.transform else image), int(self.rows[index, LABEL])


class EncodedImages:
    """A batch's encoded images (bytes). Not a Sequence on purpose: Lightning's transfer to the device
    leaves it as it is, where a list of bytes would be rebuilt byte by byte (4 s a batch of 64 photos)."""

    def __init__(self, items: Iterable[bytes]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.items)

    def __getitem__(self, index: int) -> bytes:
        return self.items[index]
