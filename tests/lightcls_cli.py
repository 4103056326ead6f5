"""Run a lightcls console entry point the way a user does: a fresh process, real Hydra command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lightcls.config import config_dir

SRC = Path(__file__).resolve().parents[1] / "src"


def run_entry(entry: str, args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`lightcls-<entry> ARGS` (the `lightcls.cli.<entry>` Hydra main) in `cwd`, outputs kept in `cwd`."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HYDRA_FULL_ERROR": "0",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    if not any(a.startswith("paths.outputs_root=") for a in args):
        args = [*args, f"paths.outputs_root={cwd / 'outputs'}"]
    return subprocess.run(
        [sys.executable, "-c", f"from lightcls.cli import {entry}; {entry}()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_data(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run `lightcls-data ARGS` (the module behind the console script) in a subprocess."""
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "lightcls.cli_data", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def compose_task(name: str, overrides: list[str], run_dir: Path) -> DictConfig:
    """The `name` config as its command composes it, writing into `run_dir`."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(name, overrides=[*overrides, f"paths.output_dir={run_dir}"])


def quoted(path: Path) -> str:
    """A path as a Hydra override value (checkpoint names hold '=')."""
    return f'"{path}"'
