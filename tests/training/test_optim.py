"""The one optimizer/schedule builder: each config option, and the lr it gives epoch by epoch."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from helpers import compose_train, one_line_error
from lightcls.training.optim import build_optimizer, build_schedule, check_optimization


def _built(overrides: list[str]) -> tuple[torch.optim.Optimizer, object]:
    cfg = compose_train(overrides)
    optimizer = build_optimizer(
        OmegaConf.to_container(cfg.optimizer, resolve=True), [torch.nn.Parameter(torch.zeros(3))]
    )
    return optimizer, build_schedule(OmegaConf.to_container(cfg.scheduler, resolve=True), optimizer)


@pytest.mark.parametrize(
    ("name", "cls", "lr"),
    [
        ("sgd", torch.optim.SGD, 0.05),
        ("adam", torch.optim.Adam, 0.001),
        ("adamw", torch.optim.AdamW, 0.001),
        ("adagrad", torch.optim.Adagrad, 0.01),
    ],
)
def test_optimizer_configs(name: str, cls: type, lr: float) -> None:
    optimizer, _ = _built([f"optimizer={name}"])
    assert type(optimizer) is cls and optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    assert _built([f"optimizer={name}", "optimizer.lr=0.123"])[0].param_groups[0]["lr"] == 0.123


def test_scheduler_none_keeps_the_lr_constant() -> None:
    assert _built(["scheduler=none"])[1] is None


def _lrs(overrides: list[str], epochs: int) -> list[float]:
    optimizer, scheduler = _built(overrides)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_step_scheduler_divides_the_lr_every_step_size_epochs() -> None:
    lrs = _lrs(["scheduler=step", "scheduler.schedule.step_size=2", "optimizer.lr=1.0"], 5)
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_cosine_scheduler_with_warmup_ramps_up_then_decays() -> None:
    lrs = _lrs(
        ["scheduler=cosine", "scheduler.warmup_epochs=2", "optimizer.lr=1.0", "trainer.max_epochs=6"], 6
    )
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1.0)
    assert lrs[2] > lrs[3] > lrs[4] > lrs[5]


def test_the_check_is_the_builder_own_error() -> None:
    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "momentum": -1}
    assert (
        one_line_error(check_optimization, sgd, None) == "optimizer.momentum=-1: Invalid momentum value: -1"
    )
    bad_schedule = {"schedule": {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True}}
    message = one_line_error(check_optimization, {**sgd, "momentum": 0.9}, bad_schedule)
    assert message.startswith("cannot build scheduler.schedule from the config: ")
