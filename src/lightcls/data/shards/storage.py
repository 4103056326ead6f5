"""Where shards live: a local folder or an fsspec URL (s3://, gs://, memory://, ...), read and sized."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightcls.errors import LightclsError


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


def _size(url: str) -> int:
    if not is_url(url):
        return os.path.getsize(url)
    fs, path = _url_fs(url)
    return int(fs.size(path))
