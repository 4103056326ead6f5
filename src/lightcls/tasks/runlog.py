"""Runs started from Python (the API, search trials) laid out as a command-line run: .hydra/ and a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """The run's log lines also go to `path` (what Hydra's job logging gives a command-line run)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


@contextmanager
def python_run(cfg: DictConfig, overrides: list[str], run_dir: Path) -> Iterator[Path]:
    """`cfg` runs in `run_dir` as Hydra would run it: `.hydra/config.yaml`, `overrides.yaml`, `<task>.log`."""
    cfg.paths.output_dir = str(run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(list(overrides)), encoding="utf-8")
    with log_to(run_dir / f"{cfg.task_name}.log"):
        yield run_dir
