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


#: optimizer arguments that are plain numbers (torch would read `true` as 1 or fail deep in a comparison)
NUMBERS = ("weight_decay", "momentum", "dampening", "eps", "alpha", "lr_decay", "initial_accumulator_value")


def build_optimizer(
    config: Mapping[str, Any], params: Iterable[torch.nn.Parameter] | torch.nn.Module
) -> torch.optim.Optimizer:
    """The optimizer of a `_partial_: true` config (conf/optimizer/) over `params` (a module's, or a list);
    a bad value (lr <= 0, a negative weight decay, ...) is a one-line LightclsError naming its key.

    `decay_norm_and_bias: false` puts a module's one-dimensional parameters (biases, norm scales and
    shifts) in a group without weight decay.
    """
    config = dict(config)
    decay_all = config.pop("decay_norm_and_bias", True)
    if not isinstance(decay_all, bool):
        raise LightclsError(f"optimizer.decay_norm_and_bias must be true or false, got {decay_all!r}")
    lr = config.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))):
        raise LightclsError(f"optimizer.lr must be a number > 0, got {lr!r}")
    for key in NUMBERS:
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise LightclsError(f"optimizer.{key} must be a number, got {value!r}")
    if isinstance(params, torch.nn.Module):
        trained = [p for p in params.parameters() if p.requires_grad]
        if not decay_all:
            trained = [
                {"params": [p for p in trained if p.ndim > 1]},
                {"params": [p for p in trained if p.ndim <= 1], "weight_decay": 0.0},
            ]
        params = trained
    try:
        optimizer = instantiate(config)(params)
    except InstantiationException as err:
        raise LightclsError(f"cannot build the optimizer from the config: {err.__cause__ or err}") from None
    except (ValueError, TypeError, RuntimeError) as err:  # RuntimeError: options that exclude each other
        default = (
            " (fused is lightcls's default: optimizer.fused=false turns it off)"
            if "fused" in str(err)
            else ""
        )
        raise LightclsError(f"{_optimizer_key(config, str(err))}: {err}{default}") from None
    if lr is not None and lr <= 0:
        raise LightclsError(f"optimizer.lr must be > 0, got {lr}")
    return optimizer


def build_schedule(
    config: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer, steps_per_epoch: float = 1.0
) -> LRScheduler | None:
    """The lr schedule of a conf/scheduler/ config (`schedule` plus optional linear warmup); None for a
    constant lr. Lengths are in epochs; with `interval: step` the schedule moves every optimizer step,
    its lengths (`warmup_epochs`, the schedule's `T_max`/`step_size`) counted as `steps_per_epoch` each."""
    config = config or {}
    if not config.get("schedule"):
        return None
    interval = config.get("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise LightclsError(f"scheduler.interval must be epoch or step, got {interval!r}")
    warmup = float(config.get("warmup_epochs", 0))
    if interval == "epoch" and warmup != int(warmup):
        raise LightclsError(
            f"scheduler.warmup_epochs={warmup:g}: a fraction of an epoch needs scheduler.interval=step"
        )
    schedule = dict(config["schedule"])
    warmup_steps = round(warmup * steps_per_epoch) if interval == "step" else int(warmup)
    if interval == "step":
        if "T_max" in schedule:  # the cosine spans the steps after the warmup
            schedule["T_max"] = max(1, round(float(schedule["T_max"]) * steps_per_epoch) - warmup_steps)
        if "step_size" in schedule:
            schedule["step_size"] = max(1, round(float(schedule["step_size"]) * steps_per_epoch))
    try:
        scheduler = instantiate(schedule)(optimizer)
    except (InstantiationException, ValueError, TypeError) as err:
        raise LightclsError(
            f"cannot build scheduler.schedule from the config: {err.__cause__ or err}"
        ) from None
    if warmup_steps > 0:
        start = config.get("warmup_start_factor", 0.1)
        ramp = LinearLR(optimizer, start_factor=start, total_iters=warmup_steps)
        scheduler = SequentialLR(optimizer, [ramp, scheduler], milestones=[warmup_steps])
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
