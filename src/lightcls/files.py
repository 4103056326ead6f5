"""Result files written whole or not at all: a full disk or a kill never leaves half a file behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lightcls.errors import LightclsError

#: Pillow's options for the PNG figures and grids lightcls writes: zlib level 1 encodes about 5x faster
#: than Pillow's default 6 (a gallery's ten grids: 0.94 -> 0.2 s), for files about 20% larger
PNG = {"format": "PNG", "compress_level": 1}


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file beside it, renamed over `path` once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data: Any, indent: int | None = 2) -> Path:
    """`data` as JSON in `path` (written whole or not at all)."""
    separators = None if indent else (",", ":")
    return write_text(path, json.dumps(data, indent=indent, separators=separators) + "\n")


def read_json(path: Path, what: str = "") -> Any:
    """The JSON in `path`; a missing, truncated or unreadable file is one line naming it (and `what`)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LightclsError(f"{path}: no such file{what and f' ({what})'}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else str(err).split(":")[0].lower()
        raise LightclsError(f"{path}: cannot be read ({reason}){what and f'; {what}'}") from None
