"""Reading one image's bytes from a shard by its manifest row: checksum and the tar's own label checked."""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from lightcls.data.shards.manifest import CRC, LABEL, MANIFEST, OFFSET, SHARD, SIZE
from lightcls.data.shards.storage import _open, _url_fs, is_url, join
from lightcls.errors import LightclsError


class ShardReader:
    """Reads one image's bytes by (shard, offset, size), checking its crc32; local shard files stay open,
    a shard in object storage is fetched whole in one request and kept while its images are read (an
    epoch reads a shard's images together; a request per image costs a round trip each: 6 ms each on a
    loopback S3, tens of ms on a real one)."""

    def __init__(self, root: str, shards: Sequence[dict[str, Any]]) -> None:
        self.root = root
        self.names = [s["name"] for s in shards]
        self._files: dict[int, Any] = {}
        self._blobs: dict[int, bytes] = {}
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
            if isinstance(f, tuple):  # a URL: the whole shard, fetched once
                window = self._fetched(shard, f)[start : offset + size]
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

    def _fetched(self, shard: int, remote: tuple[Any, str]) -> bytes:
        """Shard `shard` of a URL root, whole: the last `FETCHED` shards read stay in memory."""
        if shard not in self._blobs:
            while len(self._blobs) >= FETCHED:
                self._blobs.pop(next(iter(self._blobs)))
            fs, path = remote
            self._blobs[shard] = fs.cat_file(path)
        return self._blobs[shard]

    def __getstate__(self) -> dict[str, Any]:  # open files stay in the process that opened them
        return {**self.__dict__, "_files": {}, "_blobs": {}}


#: shards of a URL root a reader keeps in memory (a DataLoader worker's batches interleave two at most)
FETCHED = 2


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
