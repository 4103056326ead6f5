"""Steady-state training throughput, for metrics.json and the logs."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch


class TrainThroughput(L.Callback):
    """Training images per second, timed from the end of batch `skip` to the end of each epoch's last.

    Lightning's ThroughputMonitor logs windowed rates per device; this keeps the one steady-state
    figure that runs and benchmarks are compared by (loader start-up and warm-up batches excluded).
    """

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self.images = 0
        self.seconds = 0.0
        self._epoch_images = 0
        self._start = self._last = 0.0

    @property
    def images_per_second(self) -> float | None:
        """The steady-state figure; None when no epoch had more than `skip` batches."""
        return self.images / self.seconds if self.seconds > 0 else None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_images = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx + 1 < self.skip:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self._last = time.perf_counter()
        if batch_idx + 1 == self.skip:
            self._start = self._last
        else:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            self._epoch_images += len(images) * trainer.world_size

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._epoch_images and self._last > self._start:
            seconds = self._last - self._start
            self.images += self._epoch_images
            self.seconds += seconds
            pl_module.log("train/images_per_second", self._epoch_images / seconds, rank_zero_only=True)
