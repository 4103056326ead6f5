"""Atomic checkpoint writes: a kill during a save leaves the previous file intact."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightcls.ckpt.load import seal


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write `<file>.tmp-<pid>` next to the target, fsync, then `os.replace` it over the target.

    Hand-written because Lightning's own save goes through an fsspec transaction that writes to the
    system temp dir and `shutil.move`s it: a plain copy (not atomic) when that dir is another
    filesystem, and never fsynced.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any = None) -> None:
        """Save `checkpoint` to `path` atomically (local paths; others go through Lightning), with the digest
        of its weights that loading checks."""
        checkpoint = seal(checkpoint)
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(target.parent)


def link_over(source: Path, target: Path) -> None:
    """Make `target` a hard link to `source` atomically: linked beside it, then renamed over it (a kill
    leaves the previous `target` whole). Raises OSError where the filesystem has no hard links."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.link(source, tmp)
    try:
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def update_weights(path: Path, values: dict[str, torch.Tensor]) -> None:
    """Set `values` in the state_dict of the checkpoint `path` (a fitted temperature, tuned thresholds),
    written atomically with a new digest; a hard link to it in its folder (`last.ckpt` of the same step)
    is linked to the new file too."""
    twins = [p for p in path.parent.glob("*.ckpt") if p != path and _same_file(p, path)]
    saved = torch.load(path, map_location="cpu", weights_only=True)
    saved["state_dict"].update({key: value.detach().cpu().clone() for key, value in values.items()})
    AtomicCheckpointIO().save_checkpoint(saved, path)
    for twin in twins:
        link_over(path, twin)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def remove_partial_saves(folder: Path) -> None:
    """Remove the `<file>.tmp-<pid>` a killed save left in `folder` (its process no longer runs)."""
    for tmp in folder.glob("*.tmp-*"):
        pid = tmp.name.rpartition(".tmp-")[2]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether a process `pid` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
