"""The resumable training loader over a ShardDataset (Lightning checkpoints its position mid-epoch)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

from lightcls.data.shards.datasets import ShardDataset
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)


class ShardLoader(DataLoader):
    """A DataLoader of a ShardDataset that Lightning can checkpoint mid-epoch and resume from.

    `completed` (the epoch's batches trained, set after each by the LoaderPosition callback) and the epoch
    are its state; a loader given that state leaves those batches out of its next pass over that epoch.
    `epoch` tells it which epoch a new pass is (the trainer's).
    """

    def __init__(
        self,
        dataset: ShardDataset,
        epoch: Callable[[], int] = lambda: 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int = 4,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=pin_memory,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
        )
        self.epoch = epoch
        self.completed = 0
        self._resume: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.dataset.epoch), "completed": int(self.completed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["completed"]))

    def __iter__(self) -> Iterator[Any]:
        dataset: ShardDataset = self.dataset  # type: ignore[assignment]
        dataset.epoch = self.epoch()
        dataset.skip = self._resume[1] if self._resume and self._resume[0] == dataset.epoch else 0
        self._resume = None
        self.completed = dataset.skip
        if dataset.skip:
            log.info("resuming epoch %d of the shards after batch %d", dataset.epoch, dataset.skip)
        return _one_line_errors(super().__iter__())


def _one_line_errors(batches: Iterator[Any]) -> Iterator[Any]:
    """Batches; a LightclsError raised in a worker process comes out as the one line it was."""
    try:
        yield from batches
    except LightclsError as err:
        stop = getattr(batches, "_shutdown_workers", None)
        if stop is not None:  # now, not when the garbage collector gets to it
            stop()
        last = [line for line in str(err).splitlines() if line.strip()][-1]
        prefix = f"{LightclsError.__module__}.{LightclsError.__name__}: "
        raise LightclsError(last.removeprefix(prefix)) from None
