"""Packing a split-folder data set into WebDataset shards with a manifest (`lightcls-data pack`)."""

from __future__ import annotations

import io
import logging
import random
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from lightcls.data.check import checked_layout
from lightcls.data.decode import to_mode
from lightcls.data.shards.manifest import MANIFEST, write_manifest
from lightcls.data.shards.storage import _url_fs, check_bucket, is_url, remote_error
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)


_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L"})


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
    if url:
        check_bucket(dst)
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
            _upload(stage, dst, *remote)
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


def _upload(stage: Path, dst: str, fs: Any, path: str) -> None:
    """The packed files into `dst`'s store (an object store's bucket exists: checked before packing)."""
    try:
        fs.makedirs(path, exist_ok=True)
        for file in sorted(stage.iterdir()):
            fs.put_file(str(file), f"{path.rstrip('/')}/{file.name}")
    except Exception as err:  # noqa: BLE001 - each store's client raises its own types
        raise remote_error(dst, err) from None


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
