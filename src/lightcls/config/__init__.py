"""Configuration: where conf/ lives, composition and its one-line mistakes, the choice of run dirs."""

from lightcls.config.clock import started_at
from lightcls.config.compose import compose, compose_config, config_dir, quote
from lightcls.config.rundir import resumed_run_dir, run_dir_overrides, unique_dir

__all__ = [
    "compose",
    "compose_config",
    "config_dir",
    "quote",
    "resumed_run_dir",
    "run_dir_overrides",
    "started_at",
    "unique_dir",
]
