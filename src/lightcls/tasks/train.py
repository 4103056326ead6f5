"""The train task: one training run of the composed config (lightcls.workflows.training)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from lightcls.workflows.training import run_training


def train(cfg: DictConfig, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train a classifier as `cfg` says; return the metrics it writes to `<run dir>/metrics.json`.

    `callbacks` join those of the config (a search's pruning callback, for one).
    """
    return run_training(cfg, callbacks)
