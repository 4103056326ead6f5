"""Every config option composes through Hydra and builds the object it names."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_train
from lightcls.config import config_dir
from lightcls.models import list_models
from lightcls.module import ClassificationModule

DIGITS_PREPROCESS = {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _module(cfg, classes=10) -> ClassificationModule:
    plain = OmegaConf.to_container(cfg, resolve=True)
    return ClassificationModule(
        model=plain["model"],
        classes=[str(i) for i in range(classes)],
        preprocess=DIGITS_PREPROCESS,
        optimizer=plain["optimizer"],
        scheduler=plain["scheduler"],
    )


def test_every_listed_model_has_a_config() -> None:
    assert _options("model") == list_models()


@pytest.mark.parametrize("name", list_models())
def test_model_config_builds_a_grayscale_ten_class_network(name: str, tmp_path) -> None:
    cfg = compose_train([f"model={name}"], tmp_path)
    assert cfg.model.name == name and cfg.model.pretrained is False
    module = _module(cfg).eval()
    with torch.no_grad():
        logits = module(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "cls", "lr"),
    [
        ("sgd", torch.optim.SGD, 0.05),
        ("adam", torch.optim.Adam, 0.001),
        ("adamw", torch.optim.AdamW, 0.001),
        ("adagrad", torch.optim.Adagrad, 0.01),
    ],
)
def test_optimizer_configs(name: str, cls: type, lr: float, tmp_path) -> None:
    cfg = compose_train([f"optimizer={name}"], tmp_path)
    optimizer = _module(cfg).configure_optimizers()["optimizer"]
    assert type(optimizer) is cls and optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    override = compose_train([f"optimizer={name}", "optimizer.lr=0.123"], tmp_path)
    assert _module(override).configure_optimizers()["optimizer"].param_groups[0]["lr"] == 0.123


def test_scheduler_none_keeps_the_lr_constant(tmp_path) -> None:
    cfg = compose_train(["scheduler=none"], tmp_path)
    assert isinstance(_module(cfg).configure_optimizers(), torch.optim.SGD)


def _lrs(cfg, epochs: int) -> list[float]:
    conf = _module(cfg).configure_optimizers()
    optimizer, scheduler = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_step_scheduler_divides_the_lr_every_step_size_epochs(tmp_path) -> None:
    cfg = compose_train(["scheduler=step", "scheduler.schedule.step_size=2", "optimizer.lr=1.0"], tmp_path)
    assert _lrs(cfg, 5) == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_cosine_scheduler_with_warmup_ramps_up_then_decays(tmp_path) -> None:
    cfg = compose_train(
        ["scheduler=cosine", "scheduler.warmup_epochs=2", "optimizer.lr=1.0", "trainer.max_epochs=6"],
        tmp_path,
    )
    lrs = _lrs(cfg, 6)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1.0)
    assert lrs[2] > lrs[3] > lrs[4] > lrs[5]


@pytest.mark.parametrize(
    ("name", "accelerator", "devices", "strategy"),
    [
        ("auto", "auto", 1, None),
        ("cpu", "cpu", 1, None),
        ("gpu", "gpu", 1, None),
        ("ddp", "gpu", 2, "ddp"),
        ("ddp_cpu", "cpu", 2, "ddp"),
    ],
)
def test_trainer_configs(name: str, accelerator: str, devices: int, strategy: str | None, tmp_path) -> None:
    cfg = compose_train([f"trainer={name}"], tmp_path)
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.get("strategy")) == (
        accelerator,
        devices,
        strategy,
    )
    if accelerator != "gpu":
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert trainer.max_epochs == cfg.trainer.max_epochs
        assert trainer.num_devices == devices
        assert type(trainer.strategy).__name__ == ("DDPStrategy" if strategy else "SingleDeviceStrategy")


@pytest.mark.parametrize(
    ("name", "channels", "size"), [("digits", 1, 32), ("hand_gray", 1, 128), ("folder", 3, 224)]
)
def test_data_configs(name: str, channels: int, size: int, tmp_path) -> None:
    cfg = compose_train([f"data={name}", f"data.root={tmp_path}/set", "data.batch_size=7"], tmp_path)
    datamodule = instantiate(cfg.data)
    assert datamodule.preprocess["channels"] == channels
    assert datamodule.preprocess["image_size"] == size
    assert datamodule.batch_size == 7
    assert str(datamodule.root) == f"{tmp_path}/set"


def test_the_spec_override_spellings_exist(tmp_path) -> None:
    cfg = compose_train(
        [
            "data.root=/x",
            "data.batch_size=8",
            "data.num_workers=1",
            "optimizer.lr=0.5",
            "trainer.max_epochs=2",
            "trainer.devices=1",
            "ckpt_path=/c.ckpt",
            "model.pretrained=/w.pth",
            "seed=7",
        ],
        tmp_path,
    )
    assert (cfg.data.root, cfg.data.batch_size, cfg.data.num_workers, cfg.optimizer.lr) == ("/x", 8, 1, 0.5)
    assert (cfg.trainer.max_epochs, cfg.trainer.devices, cfg.ckpt_path) == (2, 1, "/c.ckpt")
    assert (cfg.model.pretrained, cfg.seed) == ("/w.pth", 7)


@pytest.mark.parametrize("name", _options("experiment"))
def test_experiments_compose(name: str, tmp_path) -> None:
    cfg = compose_train([f"experiment={name}"], tmp_path)
    assert cfg.model.name == "resnet18"
