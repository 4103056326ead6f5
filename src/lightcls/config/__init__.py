"""Configuration: where conf/ lives, composition and its one-line mistakes, the choice of run dirs."""

import time

#: when a command's configuration code was first imported: metrics.json's `seconds.startup` counts from it
STARTED_AT = time.time()

from lightcls.config.compose import compose, compose_config, config_dir, quote  # noqa: E402 (after the clock)
from lightcls.config.rundir import resumed_run_dir, run_dir_overrides, unique_dir  # noqa: E402

__all__ = [
    "STARTED_AT",
    "compose",
    "compose_config",
    "config_dir",
    "quote",
    "resumed_run_dir",
    "run_dir_overrides",
    "unique_dir",
]
