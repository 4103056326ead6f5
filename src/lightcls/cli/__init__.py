"""Console entry points: lightcls-train|eval|predict|export|info (cli.main), lightcls-data (cli.data)."""

from typing import Any

_COMMANDS = ("train", "evaluate", "predict", "export", "info")


def __getattr__(name: str) -> Any:
    """`from lightcls.cli import train` (the entry points before 0.2) without importing Hydra for cli.data."""
    if name in _COMMANDS:
        from lightcls.cli import main

        return getattr(main, name)
    raise AttributeError(f"module 'lightcls.cli' has no attribute {name!r}")
