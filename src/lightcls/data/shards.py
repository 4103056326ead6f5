"""Shards: a split-folder data set packed into WebDataset tar files, read back by byte offset.

WebDataset writes the shards (any WebDataset pipeline reads them: `key.jpg` + `key.cls` per image); the
reading is ours because WebDataset streams each shard front to back, with no exact per-rank split and no
way to resume mid-epoch: the offsets recorded at pack time give both.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from lightcls.data.augment import crops_first
from lightcls.data.check import checked_layout
from lightcls.data.decode import ImageReadMode, decode_bytes, decode_jpeg, to_mode
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError
from lightcls.files import write_json

log = logging.getLogger(__name__)

MANIFEST = "lightcls_shards.json"
FORMAT = "lightcls-shards"
VERSION = 1
#: A sample's columns in the manifest: shard index, byte offset, byte size, label, crc32 of the bytes.
SHARD, OFFSET, SIZE, LABEL, CRC = range(5)
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L"})


def is_url(root: str | Path) -> bool:
    """True for an fsspec URL (s3://, gs://, memory://, ...), false for a local path."""
    return "://" in str(root)


def join(root: str, name: str) -> str:
    """`root`/`name` for a local folder or a URL."""
    return f"{root.rstrip('/')}/{name}" if is_url(root) else str(Path(root) / name)


def _open(url: str) -> Any:
    """A binary file for reading: a local file, or fsspec's file for a URL."""
    if not is_url(url):
        return open(url, "rb")
    fs, path = _url_fs(url)
    return fs.open(path, "rb")


def _url_fs(url: str) -> tuple[Any, str]:
    """fsspec's file system and path for `url`; a missing file-system package is one line."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise LightclsError(f"{url}: {err}") from None


def has_manifest(root: str | Path) -> bool:
    """True when `root` holds packed shards."""
    if not is_url(root):
        return (Path(root).expanduser() / MANIFEST).is_file()
    fs, path = _url_fs(join(str(root), MANIFEST))
    return fs.exists(path)


@dataclass(frozen=True)
class Manifest:
    """What `lightcls-data pack` wrote: classes, shards and each image's place in them, per split."""

    root: str
    classes: list[str]
    source: str
    short_side: int
    shards: dict[str, list[dict[str, Any]]]
    samples: dict[str, np.ndarray]

    @classmethod
    def read(cls, root: str) -> Manifest:
        """The manifest at `root` (a folder or URL); one line when it is missing or not ours."""
        where = join(root, MANIFEST)
        try:
            with _open(where) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise LightclsError(
                f"{where}: no such file; data=streaming reads shards written by "
                "`lightcls-data pack SRC=<split folder> DST=<folder or URL>`"
            ) from None
        except (OSError, ValueError) as err:
            raise LightclsError(f"{where}: cannot read the shard manifest ({err})") from None
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise LightclsError(f"{where}: not a {FORMAT} v{VERSION} manifest; pack the data set again")
        samples = {
            split: np.asarray(rows, dtype=np.int64).reshape(-1, 5) for split, rows in data["samples"].items()
        }
        return cls(root, data["classes"], data["source"], data["short_side"], data["shards"], samples)

    def check_labels(self, split: str) -> None:
        """Every label of `split` names a class, and every class has training images (one line if not)."""
        where = join(self.root, MANIFEST)
        labels = self.samples[split][:, LABEL]
        wrong = np.flatnonzero((labels < 0) | (labels >= len(self.classes)))
        if len(wrong):
            raise LightclsError(
                f"{where}: {split} image {int(wrong[0])} has label {int(labels[wrong[0]])}, but there are "
                f"{len(self.classes)} classes (0-{len(self.classes) - 1}); pack the data set again"
            )
        if split == "train" and len(labels):
            counts = np.bincount(labels, minlength=len(self.classes))
            if not counts.all():
                missing = self.classes[int(np.flatnonzero(counts == 0)[0])]
                raise LightclsError(
                    f"{where}: class {missing!r} has no training images (labels cover "
                    f"{int((counts > 0).sum())} of {len(self.classes)} classes); pack the data set again"
                )

    def check_sizes(self, split: str) -> None:
        """Every shard of `split` is there at the size written (one line naming the first that is not)."""
        for shard in self.shards[split]:
            url = join(self.root, shard["name"])
            try:
                size = _size(url)
            except FileNotFoundError:
                raise LightclsError(f"{url}: shard missing (listed in {MANIFEST})") from None
            if size != shard["bytes"]:
                raise LightclsError(
                    f"{url}: {size:,} bytes, {MANIFEST} says {shard['bytes']:,}: the shard is truncated or "
                    "was replaced; pack the data set again"
                )


def _size(url: str) -> int:
    if not is_url(url):
        return os.path.getsize(url)
    fs, path = _url_fs(url)
    return int(fs.size(path))


class ShardReader:
    """Reads one image's bytes by (shard, offset, size), checking its crc32; shard files stay open."""

    def __init__(self, root: str, shards: Sequence[dict[str, Any]]) -> None:
        self.root = root
        self.names = [s["name"] for s in shards]
        self._files: dict[int, Any] = {}
        self._pid = os.getpid()

    def read(self, row: np.ndarray) -> tuple[bytes, str]:
        """The bytes of the image in `row` and its name for messages (`shard:offset`)."""
        shard, offset, size, crc = int(row[SHARD]), int(row[OFFSET]), int(row[SIZE]), int(row[CRC])
        url = join(self.root, self.names[shard])
        name = f"{url}@{offset}"
        if self._pid != os.getpid():  # a forked worker: files opened before the fork share their offsets
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            if len(self._files) >= 16:  # a few open at once: a worker may visit every shard of a big set
                oldest = next(iter(self._files))
                old = self._files.pop(oldest)
                if not isinstance(old, tuple):
                    old.close()
            try:
                self._files[shard] = _url_fs(url) if is_url(url) else _open(url)
            except FileNotFoundError:
                raise LightclsError(f"{url}: shard missing (listed in {MANIFEST})") from None
            except OSError as err:
                raise LightclsError(f"{url}: cannot open ({err})") from None
        f = self._files[shard]
        start = max(0, offset - LABEL_WINDOW)  # the sample's .cls entry is stored just before its image
        try:
            if isinstance(f, tuple):  # a URL: one ranged request (a file object's readahead would fetch MBs)
                fs, path = f
                window = fs.cat_file(path, start=start, end=offset + size)
            else:
                f.seek(start)
                window = f.read(offset + size - start)
        except OSError as err:
            raise LightclsError(f"{url}: cannot read ({err})") from None
        head, data = window[: offset - start], window[offset - start :]
        if len(data) != size:
            raise LightclsError(
                f"{url}: truncated at byte {offset + len(data):,} (the image at {offset:,} "
                f"needs {size:,} bytes); pack the data set again"
            )
        if zlib.crc32(data) != crc:
            raise LightclsError(
                f"{url}: corrupt: the image at byte {offset:,} fails its checksum; pack the data set again"
            )
        stored = _stored_label(head)
        if stored != int(row[LABEL]):
            said = "has no .cls entry" if stored is None else f"is labelled {stored} in the shard"
            raise LightclsError(
                f"{url}: the image at byte {offset:,} {said} but {int(row[LABEL])} in {MANIFEST}; "
                "pack the data set again"
            )
        return data, name

    def __getstate__(self) -> dict[str, Any]:  # open files stay in the process that opened them
        return {**self.__dict__, "_files": {}}


#: bytes read before an image to find its sample's .cls entry (WebDataset writes a sample's entries in key
#: order, each after a pax header: cls header and value, then the image's pax header, pax data and header)
LABEL_WINDOW = 8 * tarfile.BLOCKSIZE


def _stored_label(head: bytes) -> int | None:
    """The label of the last `.cls` tar entry among the 512-byte blocks of `head` (None if there is none).

    Hand-written: tarfile and WebDataset read a tar from its start; this reads one sample's entries in
    place, from the same ranged read as its image.
    """
    label = None
    usable = len(head) - len(head) % tarfile.BLOCKSIZE
    for at in range(len(head) - usable, len(head) - tarfile.BLOCKSIZE, tarfile.BLOCKSIZE):
        try:
            info = tarfile.TarInfo.frombuf(head[at : at + tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            continue
        if info.name.endswith(".cls") and info.size <= tarfile.BLOCKSIZE:
            value = head[at + tarfile.BLOCKSIZE : at + tarfile.BLOCKSIZE + info.size]
            label = int(value) if value.strip().lstrip(b"-").isdigit() else None
    return label


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
    return decode_bytes(data, preprocess.channels, preprocess.image_size, name)


def decode_images(
    encoded: Sequence[bytes],
    preprocess: Preprocess,
    steps: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    device: torch.device | str,
) -> torch.Tensor:
    """A uint8 batch on `device` from encoded images: JPEGs decoded there in one batched call
    (torchvision's decode_jpeg; nvJPEG on a GPU), others (and JPEGs with an EXIF rotation) by
    decode_bytes on the CPU; then each resized (or given to a leading RandomResizedCrop), then `steps`."""
    channels, size = preprocess.channels, preprocess.image_size
    images: list[torch.Tensor | None] = [None] * len(encoded)
    jpegs = [i for i, data in enumerate(encoded) if data[:2] == b"\xff\xd8" and decode_jpeg is not None]
    on_device = [i for i in jpegs if not _rotated(encoded[i])]
    if on_device:
        mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
        raw = [torch.frombuffer(bytearray(encoded[i]), dtype=torch.uint8) for i in on_device]
        for i, image in zip(on_device, decode_jpeg(raw, mode=mode, device=device), strict=True):
            images[i] = image
    for i, image in enumerate(images):
        if image is None:
            images[i] = decode_bytes(encoded[i], channels, size, f"image {i} of the batch").to(device)
    steps = list(steps)
    first = steps.pop(0) if crops_first(steps, size) else preprocess.resize()
    out = [first(image) for image in images]
    if all(getattr(s, "batched", False) for s in steps):
        batch = torch.stack(out)
        for step in steps:
            batch = step(batch)
        return batch
    for step in steps:
        out = [step(image) for image in out]
    return torch.stack(out)


def _rotated(jpeg: bytes) -> bool:
    """True when a JPEG's EXIF says to rotate or mirror it (the batched decode leaves that out)."""
    with Image.open(io.BytesIO(jpeg)) as img:
        return img.getexif().get(0x0112, 1) != 1


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


class ShardLoader(DataLoader):
    """A DataLoader of a ShardDataset that Lightning can checkpoint mid-epoch and resume from.

    `completed` (the epoch's batches trained, set after each by the LoaderPosition callback) and the epoch
    are its state; a loader given that state leaves those batches out of its next pass over that epoch.
    `epoch` tells it which epoch a new pass is (the trainer's).
    """

    def __init__(
        self,
        dataset: ShardDataset,
        epoch: Callable[[], int] = lambda: 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int = 4,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=pin_memory,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
        )
        self.epoch = epoch
        self.completed = 0
        self._resume: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.dataset.epoch), "completed": int(self.completed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["completed"]))

    def __iter__(self) -> Iterator[Any]:
        dataset: ShardDataset = self.dataset  # type: ignore[assignment]
        dataset.epoch = self.epoch()
        dataset.skip = self._resume[1] if self._resume and self._resume[0] == dataset.epoch else 0
        self._resume = None
        self.completed = dataset.skip
        if dataset.skip:
            log.info("resuming epoch %d of the shards after batch %d", dataset.epoch, dataset.skip)
        return _one_line_errors(super().__iter__())


def _one_line_errors(batches: Iterator[Any]) -> Iterator[Any]:
    """Batches; a LightclsError raised in a worker process comes out as the one line it was."""
    try:
        yield from batches
    except LightclsError as err:
        stop = getattr(batches, "_shutdown_workers", None)
        if stop is not None:  # now, not when the garbage collector gets to it
            stop()
        last = [line for line in str(err).splitlines() if line.strip()][-1]
        prefix = f"{LightclsError.__module__}.{LightclsError.__name__}: "
        raise LightclsError(last.removeprefix(prefix)) from None


class _Encoded(Dataset):
    """Each (file, label) as the bytes a shard stores: the file as it is, or made smaller once."""

    def __init__(self, samples: Sequence[tuple[Path, int]], short_side: int) -> None:
        self.samples, self.short_side = list(samples), short_side

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[str, bytes, int]:
        path, label = self.samples[index]
        ext = path.suffix.lower().lstrip(".") or "img"
        with Image.open(path) as img:
            small = self.short_side and min(img.size) > self.short_side
            if not small:
                return ext, path.read_bytes(), label
            jpeg = img.format == "JPEG"
            if jpeg:
                img.draft(None, tuple(2 * self.short_side * s // min(img.size) for s in img.size))
            img = ImageOps.exif_transpose(img)
            img = to_mode(img, "L" if img.mode in _GREY_MODES else "RGB")
            scale = self.short_side / min(img.size)
            img = img.resize(
                (round(img.width * scale), round(img.height * scale)),
                Image.Resampling.BILINEAR,
                reducing_gap=3.0,
            )
            out = io.BytesIO()
            img.save(out, "JPEG" if jpeg else "PNG", **({"quality": 90} if jpeg else {}))
            return ("jpg" if jpeg else "png"), out.getvalue(), label


def pack(
    src: str | Path,
    dst: str,
    shard_size: int = 1000,
    short_side: int = 256,
    seed: int = 0,
    val_fraction: float = 0.15,
    split_seed: int = 0,
    workers: int = 0,
) -> dict[str, Any]:
    """Write the split-folder data set at `src` into shards at `dst` (a folder or an fsspec URL).

    Each split's images go in a seeded random order (every shard holds a mix of classes), `shard_size` a
    shard; an image whose short side exceeds `short_side` is stored resized to it (JPEG stays JPEG,
    quality 90; anything else PNG), others byte for byte (`short_side=0`: all). Returns the manifest's
    summary: {'root', 'classes', 'splits': {split: images}, 'shards': {split: count}}.
    """
    if shard_size < 1 or short_side < 0:
        raise LightclsError(f"shard_size must be >= 1 and short_side >= 0, got {shard_size} and {short_side}")
    layout = checked_layout(Path(src).expanduser(), val_fraction, split_seed, "fail", {})
    url = is_url(dst)
    remote = _url_fs(dst) if url else None  # an unknown protocol or a missing package: one line, at once
    stage = Path(tempfile.mkdtemp(prefix="lightcls-pack-")) if url else Path(dst).expanduser()
    if not url:
        _refuse_foreign(stage)
    stage.mkdir(parents=True, exist_ok=True)
    shards: dict[str, list[dict[str, Any]]] = {}
    samples: dict[str, list[list[int]]] = {}
    try:
        for split in ("train", "val", "test"):
            if layout.has(split):
                shards[split], samples[split] = write_shards(
                    stage, split, layout.splits[split], shard_size, short_side, seed, workers
                )
        write_manifest(stage, layout.classes, str(layout.root), short_side, shards, samples)
        if remote is not None:
            fs, path = remote
            fs.makedirs(path, exist_ok=True)
            for file in sorted(stage.iterdir()):
                fs.put_file(str(file), f"{path.rstrip('/')}/{file.name}")
    except BaseException:  # Ctrl-C, a full disk: no partial shards or manifest are left here
        if not url:
            for written in [*stage.glob("*.tar"), stage / MANIFEST]:
                written.unlink(missing_ok=True)
        raise
    finally:
        if url:
            shutil.rmtree(stage, ignore_errors=True)
    counts = {split: len(rows) for split, rows in samples.items()}
    log.info("packed %s into %s: %s", layout.root, dst, counts)
    return {
        "root": dst if url else str(stage.resolve()),
        "classes": layout.classes,
        "splits": counts,
        "shards": {split: len(s) for split, s in shards.items()},
    }


def write_manifest(
    folder: Path,
    classes: Sequence[str],
    source: str,
    short_side: int,
    shards: dict[str, list[dict[str, Any]]],
    samples: dict[str, list[list[int]]],
) -> None:
    """Write the manifest of the shards in `folder`."""
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "classes": list(classes),
        "source": source,
        "short_side": short_side,
        "shards": shards,
        "samples": samples,
    }
    write_json(folder / MANIFEST, manifest, indent=None)


def _refuse_foreign(folder: Path) -> None:
    """Packing replaces our own shards only: a folder holding anything else is refused."""
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MANIFEST).is_file():
        raise LightclsError(f"DST={folder}: exists and is not a shard folder; choose a new or empty folder")
    if (folder / MANIFEST).is_file():
        for old in [*folder.glob("*.tar"), folder / MANIFEST]:
            old.unlink()


def write_shards(
    stage: Path,
    split: str,
    files: Sequence[tuple[Path, int]],
    shard_size: int,
    short_side: int,
    seed: int | None,
    workers: int,
) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Write `files` into `split`-NNNNNN.tar shards in `stage`, in a seeded random order (None: as
    given); return the shards' names and sizes, and each image's manifest row."""
    import webdataset as wds

    order = list(files)
    if seed is not None:
        random.Random(f"{seed}-{split}").shuffle(order)
    encoded = DataLoader(
        _Encoded(order, short_side), batch_size=None, num_workers=workers, generator=torch.Generator()
    )
    keys: dict[str, list[tuple[str, int, int]]] = {}  # shard -> (member, label, crc32), in write order
    with wds.ShardWriter(str(stage / f"{split}-%06d.tar"), maxcount=shard_size, verbose=0) as writer:
        for i, (ext, data, label) in enumerate(encoded):
            key = f"{split}{i:08d}"
            writer.write({"__key__": key, ext: data, "cls": int(label)})
            written = (f"{key}.{ext}", int(label), zlib.crc32(data))
            keys.setdefault(Path(writer.fname).name, []).append(written)
    shards, rows = [], []
    for s, (name, written) in enumerate(keys.items()):  # a shard also closes at WebDataset's size limit
        with tarfile.open(stage / name) as tar:
            members = {m.name: m for m in tar.getmembers()}
        for member_name, label, crc in written:
            member = members[member_name]
            rows.append([s, member.offset_data, member.size, label, crc])
        shards.append({"name": name, "bytes": (stage / name).stat().st_size})
    return shards, rows
