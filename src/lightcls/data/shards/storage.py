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


#: fsspec protocols whose first path part is a bucket, which must exist (packing never creates one)
BUCKETS = ("s3", "s3a", "gs", "gcs", "az", "abfs")


def check_bucket(url: str) -> None:
    """One line when `url`'s bucket does not exist or cannot be reached with the credentials found."""
    fs, path = _url_fs(url)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    if not set(protocols) & set(BUCKETS):
        return
    bucket = path.split("/", 1)[0]
    try:
        fs.info(bucket)  # `exists` says False for missing credentials too
    except FileNotFoundError:
        raise LightclsError(
            f"{url}: no bucket {bucket!r} there (create it first, or check the name)"
        ) from None
    except Exception as err:  # noqa: BLE001 - each store's client raises its own types
        raise remote_error(url, err) from None


def remote_error(url: str, err: BaseException) -> LightclsError:
    """A failed object-store call as one line: missing credentials, access denied, or the store's words."""
    name = type(err).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
        return LightclsError(
            f"{url}: no credentials for it: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE; "
            "AWS_ENDPOINT_URL for an S3-compatible server), or the store's own"
        )
    if isinstance(err, PermissionError):
        return LightclsError(f"{url}: access denied ({err}); check the credentials and the bucket's policy")
    detail = str(err).strip().splitlines()[0] if str(err).strip() else name
    return LightclsError(f"{url}: {detail}")
