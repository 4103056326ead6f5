"""Runs started from Python (the API, search trials) laid out as a command-line run: .hydra/ and a log."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """The run's log lines also go to `path` (what Hydra's job logging gives a command-line run)."""
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if not any(_on_console(h) for h in root.handlers):  # the API in a script or notebook: as the CLI shows
        handlers.append(logging.StreamHandler(sys.stdout))
    level = root.level
    for handler in handlers:
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def _on_console(handler: logging.Handler) -> bool:
    """Whether `handler` writes to the console (Hydra's job logging does; a test's capture does not)."""
    return isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr)


@contextmanager
def python_run(cfg: DictConfig, overrides: list[str], run_dir: Path) -> Iterator[Path]:
    """`cfg` runs in `run_dir` as Hydra would run it: `.hydra/config.yaml`, `overrides.yaml`, `<task>.log`."""
    cfg.paths.output_dir = str(run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(list(overrides)), encoding="utf-8")
    with log_to(run_dir / f"{cfg.task_name}.log"):
        yield run_dir
