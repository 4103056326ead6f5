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
    both = {**sgd, "momentum": 0.9, "fused": True, "foreach": True}  # foreach asked for, fused the default
    assert one_line_error(check_optimization, both, None) == (
        "optimizer.fused=True: `fused` and `foreach` cannot be `True` together. "
        "(fused is lightcls's default: optimizer.fused=false turns it off)"
    )
    assert _built(["optimizer=sgd"])[0].defaults["fused"] is True  # torch's one-kernel update
    bad_schedule = {"schedule": {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True}}
    message = one_line_error(check_optimization, {**sgd, "momentum": 0.9}, bad_schedule)
    assert message.startswith("cannot build scheduler.schedule from the config: ")


def test_warmup_cosine_moves_every_step_over_lengths_given_in_epochs() -> None:
    cfg = compose_train(["scheduler=warmup_cosine", "optimizer.lr=1.0", "trainer.max_epochs=3"])
    optimizer = build_optimizer(
        OmegaConf.to_container(cfg.optimizer, resolve=True), [torch.nn.Parameter(torch.zeros(1))]
    )
    scheduler = build_schedule(
        OmegaConf.to_container(cfg.scheduler, resolve=True), optimizer, steps_per_epoch=10
    )
    lrs = []
    for _ in range(30):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.01)  # warmup_start_factor
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # one epoch of steps up to the peak
    assert lrs[10] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lrs[10:29], lrs[11:30], strict=True))  # then down every step
    assert lrs[29] < 0.01


def test_norm_and_bias_parameters_can_go_without_weight_decay() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    config = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "weight_decay": 1e-4}
    together = build_optimizer(config, net)
    assert [g["weight_decay"] for g in together.param_groups] == [1e-4]
    apart = build_optimizer({**config, "decay_norm_and_bias": False}, net)
    decayed, free = apart.param_groups
    assert decayed["weight_decay"] == 1e-4 and free["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in free["params"]} == {
        id(net[0].bias),
        id(net[1].weight),
        id(net[1].bias),
        id(net[2].bias),
    }
    message = one_line_error(build_optimizer, {**config, "decay_norm_and_bias": "no"}, net)
    assert message == "optimizer.decay_norm_and_bias must be true or false, got 'no'"


@pytest.mark.parametrize(
    ("model", "optimizer", "lr"),
    [("lenet", "SGD", 0.05), ("resnet18", "AdamW", 0.001), ("resnet50", "AdamW", 0.001)],
)
def test_each_model_brings_its_own_optimizer_and_learning_rate(model: str, optimizer: str, lr: float) -> None:
    cfg = compose_train([f"model={model}"])
    assert cfg.optimizer._target_ == f"torch.optim.{optimizer}" and cfg.optimizer.lr == lr
    assert compose_train([f"model={model}", "optimizer.lr=0.2"]).optimizer.lr == 0.2
    assert compose_train([f"model={model}", "optimizer=adamw"]).optimizer.lr == 0.001
    sgd_lr = {"lenet": 0.05, "resnet18": 0.01, "resnet50": 0.01}[model]
    assert compose_train([f"model={model}", "optimizer=sgd"]).optimizer.lr == sgd_lr
