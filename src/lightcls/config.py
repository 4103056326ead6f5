"""Where the Hydra configs live, and the resolvers they use."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

_claimed: dict[str, str] = {}


def config_dir() -> Path:
    """The `conf/` folder: inside the installed package, or at the root of a source checkout."""
    packaged = Path(__file__).parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf"


def unique_dir(base: str) -> str:
    """Create and return `base/<YYYY-MM-DD_HH-MM-SS>`, adding `_1`, `_2`... when another run holds it."""
    if base in _claimed:
        return _claimed[base]
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for n in itertools.count():
        path = Path(base) / (stamp if n == 0 else f"{stamp}_{n}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        _claimed[base] = str(path)
        return str(path)
    raise AssertionError("unreachable")


def run_dir(base: str, ckpt_path: str | None) -> str:
    """The run dir: the resumed checkpoint's own run dir, or a fresh unique one under `base`."""
    if ckpt_path:
        ckpt = Path(ckpt_path).resolve()
        if ckpt.parent.name == "checkpoints":
            return str(ckpt.parent.parent)
    return unique_dir(base)


def forget_run_dirs() -> None:
    """Let the next in-process run claim a new dir (called when a job ends)."""
    _claimed.clear()


def register_resolvers() -> None:
    """Register `${lightcls.run_dir:...}` and `${lightcls.unique_dir:...}` with OmegaConf."""
    if not OmegaConf.has_resolver("lightcls.run_dir"):
        OmegaConf.register_new_resolver("lightcls.run_dir", run_dir, use_cache=True)
        OmegaConf.register_new_resolver("lightcls.unique_dir", unique_dir, use_cache=True)
