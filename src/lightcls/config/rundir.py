"""Choose a run's output dir in plain Python before Hydra starts (no resolver creates directories)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lightcls.config.compose import quote

STAMP = "%Y-%m-%d_%H-%M-%S"


def unique_dir(base: str | Path, stamp: str | None = None) -> Path:
    """Create and return `base/<YYYY-MM-DD_HH-MM-SS>`, adding `_1`, `_2`... when another run holds it."""
    stamp = stamp or datetime.now().strftime(STAMP)
    for n in itertools.count():
        path = Path(base) / (stamp if n == 0 else f"{stamp}_{n}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def resumed_run_dir(ckpt_path: str | None) -> Path | None:
    """The run dir a checkpoint was saved in (`<run>/checkpoints/x.ckpt`), where a resumed run continues."""
    if not ckpt_path:
        return None
    ckpt = Path(str(ckpt_path)).expanduser().resolve()
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None


def run_dir_overrides(cfg: DictConfig, argv: Sequence[str], multirun: bool) -> list[str]:
    """`hydra.run.dir=...` (or `hydra.sweep.dir=...`) for a command about to run: a fresh unique dir under
    `<outputs_root>/<task>/runs|multiruns`, a resumed training run's own dir, or nothing when the command
    line already names one (as Lightning's DDP launcher does for its ranks)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if any(a.lstrip("+").startswith(f"{key}=") for a in argv):
        return []
    base = Path(str(cfg.paths.outputs_root)) / str(cfg.task_name)
    if multirun:
        return [f"{key}={quote(unique_dir(base / 'multiruns'))}"]
    resumed = resumed_run_dir(OmegaConf.select(cfg, "ckpt_path", default=None, throw_on_missing=False))
    if cfg.task_name == "train" and resumed is not None:
        return [f"{key}={quote(resumed)}"]
    return [f"{key}={quote(unique_dir(base / 'runs'))}"]
