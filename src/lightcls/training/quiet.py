"""A quiet console: Lightning's info lines, tips and known harmless warnings off unless asked for."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Lightning's loggers whose INFO lines (devices found, tips, seeds, checkpoint restores) `verbose` shows
LOGGERS = ("lightning.pytorch", "lightning.fabric")
#: warnings that say nothing a user can act on: (message regex, category)
HARMLESS = (
    (r".*isinstance\(treespec, LeafSpec\)` is deprecated", Warning),  # inside Lightning's own code
    (r"You have overridden `on_after_batch_transfer` in `LightningModule`", UserWarning),  # we mean to
    (r".*does not have many workers", UserWarning),  # the decode cache is read in the main process on purpose
    (r"The number of training batches \(\d+\) is smaller than the logging interval", UserWarning),
    (r"Checkpoint directory .* exists and is not empty", UserWarning),  # a resumed run continues in its dir
    (r"It is recommended to use `self.log\('train/images_per_second'", UserWarning),  # rank 0's own figure
)


@contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Inside: Lightning's INFO lines and the harmless warnings are off, unless `verbose`."""
    if verbose:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    with warnings.catch_warnings():
        for message, category in HARMLESS:
            warnings.filterwarnings("ignore", message=message, category=category)
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
