"""The optimizer and lr schedule from their configs: one builder for the config check and for training."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from lightcls.errors import LightclsError

#: words an optimizer's own error uses for a config key
_OPTIMIZER_WORDS = {"lr": "learning rate", "eps": "epsilon", "betas": "beta"}


def build_optimizer(config: Mapping[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer of a `_partial_: true` config (conf/optimizer/) over `params`; a bad value (lr <= 0,
    a negative weight decay, ...) is a one-line LightclsError naming its key."""
    lr = config.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))):
        raise LightclsError(f"optimizer.lr must be a number > 0, got {lr!r}")
    try:
        optimizer = instantiate(config)(params)
    except InstantiationException as err:
        raise LightclsError(f"cannot build the optimizer from the config: {err.__cause__ or err}") from None
    except (ValueError, TypeError) as err:
        raise LightclsError(f"{_optimizer_key(config, str(err))}: {err}") from None
    if lr is not None and lr <= 0:
        raise LightclsError(f"optimizer.lr must be > 0, got {lr}")
    return optimizer


def build_schedule(config: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer) -> LRScheduler | None:
    """The per-epoch lr schedule of a conf/scheduler/ config (`schedule` plus optional linear warmup);
    None for a constant lr."""
    config = config or {}
    if not config.get("schedule"):
        return None
    try:
        scheduler = instantiate(config["schedule"])(optimizer)
    except (InstantiationException, ValueError, TypeError) as err:
        raise LightclsError(
            f"cannot build scheduler.schedule from the config: {err.__cause__ or err}"
        ) from None
    warmup = int(config.get("warmup_epochs", 0))
    if warmup > 0:
        ramp = LinearLR(optimizer, start_factor=config.get("warmup_start_factor", 0.1), total_iters=warmup)
        scheduler = SequentialLR(optimizer, [ramp, scheduler], milestones=[warmup])
    return scheduler


def check_optimization(optimizer: Mapping[str, Any], scheduler: Mapping[str, Any] | None) -> None:
    """Build both on a dummy parameter, so their own checks run before any data is read."""
    build_schedule(scheduler, build_optimizer(optimizer, [torch.nn.Parameter(torch.zeros(1))]))


def _optimizer_key(config: Mapping[str, Any], message: str) -> str:
    """`optimizer.KEY=VALUE` for the key an optimizer's error message is about, else `optimizer`."""
    text = message.lower()
    for key in map(str, config):
        if not key.startswith("_") and (key in text or _OPTIMIZER_WORDS.get(key, "\0") in text):
            return f"optimizer.{key}={config[key]}"
    return "optimizer"


def continued_schedule(
    scheduler: LRScheduler, last_lrs: list[float], epochs_done: int, max_epochs: int
) -> LRScheduler | None:
    """A resumed run's schedule when `max_epochs` changed: a cosine schedule that continues from the lr of
    the last trained epoch down towards its eta_min over the epochs left, reaching it only after the last
    one (no epoch at lr 0, never rising, warmup not repeated). None when nothing needs to change: the
    restored schedule spans this run's epochs, or it is not a cosine (a step schedule continues by itself).
    """
    cosine = scheduler if isinstance(scheduler, CosineAnnealingLR) else None
    warmup = 0
    if isinstance(scheduler, SequentialLR):
        cosine = next((s for s in scheduler._schedulers if isinstance(s, CosineAnnealingLR)), None)
        warmup = scheduler._milestones[0] if scheduler._milestones else 0
    remaining = max_epochs - epochs_done
    if cosine is None or cosine.T_max == max_epochs - warmup or remaining < 1 or not last_lrs:
        return None
    optimizer = scheduler.optimizer
    for group, lr in zip(optimizer.param_groups, last_lrs, strict=False):
        group["lr"] = group["initial_lr"] = lr
    continued = CosineAnnealingLR(optimizer, T_max=remaining + 1, eta_min=cosine.eta_min)
    with warnings.catch_warnings():  # a step before optimizer.step(): moving to the first continued epoch
        warnings.simplefilter("ignore", UserWarning)
        continued.step()
    return continued
