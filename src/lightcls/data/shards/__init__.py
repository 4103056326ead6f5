"""Shards: a split-folder data set packed into WebDataset tar files, read back by byte offset.

WebDataset writes the shards (any WebDataset pipeline reads them: `key.jpg` + `key.cls` per image); the
reading is ours because WebDataset streams each shard front to back, with no exact per-rank split and no
way to resume mid-epoch: the offsets recorded at pack time give both.

One module per concern: `storage` (local or fsspec), `manifest`, `reader` (a row's bytes, checked),
`datasets`, `loader` (resumable), `device` (batched decoding on the device), `pack` (writing them).
"""

from lightcls.data.shards.datasets import EncodedImages, ShardDataset, ShardImageDataset, decode_row
from lightcls.data.shards.device import decode_images
from lightcls.data.shards.loader import ShardLoader
from lightcls.data.shards.manifest import (
    CRC,
    FORMAT,
    LABEL,
    MANIFEST,
    OFFSET,
    SHARD,
    SIZE,
    VERSION,
    Manifest,
    has_manifest,
    write_manifest,
)
from lightcls.data.shards.pack import pack, write_shards
from lightcls.data.shards.reader import ShardReader
from lightcls.data.shards.storage import check_bucket, is_url, join

__all__ = [
    "CRC",
    "FORMAT",
    "LABEL",
    "MANIFEST",
    "OFFSET",
    "SHARD",
    "SIZE",
    "VERSION",
    "EncodedImages",
    "Manifest",
    "ShardDataset",
    "ShardImageDataset",
    "ShardLoader",
    "ShardReader",
    "decode_images",
    "decode_row",
    "has_manifest",
    "check_bucket",
    "is_url",
    "join",
    "pack",
    "write_manifest",
    "write_shards",
]
