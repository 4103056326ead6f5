"""Decode a split once into a uint8 array on disk, memory-mapped by every later run; or, for a split too
big for that, store its images resized once to a little more than the input size (the disk cache)."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from lightcls.data.annotations import Label
from lightcls.data.datasets import ImageDataset
from lightcls.data.preprocess import Preprocess
from lightcls.data.shards import write_manifest, write_shards

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: large JPEGs decoded at reduced scale


def cache_path(
    cache_dir: Path, split: str, samples: Sequence[tuple[Path, Label]], preprocess: Preprocess
) -> Path:
    """The cache file for these files at this size: its name changes when any file changes."""
    size, channels = preprocess.image_size, preprocess.channels
    resize = {k: v for k, v in preprocess.to_dict().items() if k in ("resize_size", "interpolation")}
    digest = hashlib.sha1(f"v{CACHE_VERSION} {size} {channels}{' ' + str(resize) if resize else ''}".encode())
    for path, label in samples:
        stat = path.stat()
        digest.update(f"\n{path}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return cache_dir / f"{split}-{size}px-{channels}ch-{digest.hexdigest()[:16]}.npy"


def build_cache(
    path: Path,
    samples: Sequence[tuple[Path, Label]],
    preprocess: Preprocess,
    workers: int = 0,
    classes: Sequence[str] = (),
) -> None:
    """Decode and resize `samples` into `path` (written whole, then renamed; stale versions removed)."""
    size, channels = preprocess.image_size, preprocess.channels
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    array = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.uint8, shape=(len(samples), channels, size, size)
    )
    decoded = DataLoader(
        ImageDataset(
            samples, channels, preprocess.resize(), min_side=preprocess.resize_side, num_classes=len(classes)
        ),
        batch_size=256,
        num_workers=workers,
        generator=torch.Generator(),  # its workers' seed is not drawn from the run's random state
    )
    start = 0
    try:
        for images, _ in decoded:
            array[start : start + len(images)] = images.numpy()
            start += len(images)
        array.flush()
        del array
        os.replace(tmp, path)
    finally:  # Ctrl-C, a full disk, an unreadable image: no half-built cache is left
        tmp.unlink(missing_ok=True)
    prefix = path.name.rsplit("-", 1)[0] + "-"
    for stale in path.parent.glob(f"{prefix}*.npy"):
        if stale != path:
            stale.unlink(missing_ok=True)
    log.info("decoded %d images once into %s", len(samples), path)


def load_cache(path: Path) -> torch.Tensor:
    """The cached uint8 images (N, C, H, W), memory-mapped (copy-on-write: the file is never changed)."""
    return torch.from_numpy(np.load(path, mmap_mode="c"))


#: the disk cache keeps images at this many times the input side (room for crops, far less to decode)
DISK_SCALE = 1.15


def disk_cache_path(
    cache_dir: Path, split: str, samples: Sequence[tuple[Path, int]], preprocess: Preprocess
) -> Path:
    """The disk cache folder for these files at this size: its name changes when any file changes."""
    digest = cache_path(cache_dir, split, samples, preprocess).stem.rsplit("-", 1)[1]
    size, side, channels = preprocess.image_size, disk_side(preprocess), preprocess.channels
    return cache_dir / f"{split}-{size}px-{channels}ch-{side}side-{digest}"


def disk_side(preprocess: Preprocess) -> int:
    """The short side the disk cache stores images at."""
    return math.ceil(DISK_SCALE * preprocess.image_size)


def build_disk_cache(
    folder: Path,
    split: str,
    samples: Sequence[tuple[Path, int]],
    classes: Sequence[str],
    preprocess: Preprocess,
    workers: int = 0,
) -> None:
    """Store `samples` in shards at `folder`, each image larger than `disk_side` resized to it, in the
    split's order (written whole, then renamed; stale versions removed)."""
    side = disk_side(preprocess)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shards, rows = write_shards(tmp, split, samples, 1000, side, None, workers)
        write_manifest(tmp, classes, str(folder.parent), side, {split: shards}, {split: rows})
    except BaseException:  # Ctrl-C, a full disk: no half-written cache is left
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, folder)
    except OSError:  # another process (a DDP rank) finished the same cache first: use that one
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():
            raise
        return
    prefix = folder.name.rsplit("-", 1)[0] + "-"
    for stale in folder.parent.glob(f"{prefix}*"):
        if stale != folder and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    log.info("stored %d images resized once (short side %d) in %s", len(samples), side, folder)
