"""What `lightcls-data pack` writes beside the shards: classes, shards and each image's place in them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightcls.data.shards.storage import _open, _size, _url_fs, check_bucket, is_url, join, remote_error
from lightcls.errors import LightclsError
from lightcls.files import write_json

MANIFEST = "lightcls_shards.json"
FORMAT = "lightcls-shards"
VERSION = 1
#: A sample's columns in the manifest: shard index, byte offset, byte size, label, crc32 of the bytes.
SHARD, OFFSET, SIZE, LABEL, CRC = range(5)


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
            if is_url(root):
                check_bucket(root)  # a missing bucket says so
            raise LightclsError(
                f"{where}: no such file; data=streaming reads shards written by "
                "`lightcls-data pack SRC=<split folder> DST=<folder or URL>`"
            ) from None
        except (OSError, ValueError) as err:
            raise LightclsError(f"{where}: cannot read the shard manifest ({err})") from None
        except Exception as err:  # noqa: BLE001 - an object store's client (credentials) raises its own
            raise remote_error(root, err) from None
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
