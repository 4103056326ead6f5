"""Every config option composes through Hydra and builds the object it names; the README's keys exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from helpers import compose_train
from lightcls.config import config_dir
from lightcls.data import ImageDataModule, SplitFolderDataModule, StreamingDataModule
from lightcls.models import list_models
from lightcls.training import ClassificationModule

DIGITS_PREPROCESS = {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _module(cfg, classes=10) -> ClassificationModule:
    plain = OmegaConf.to_container(cfg, resolve=True)
    return ClassificationModule(
        model=plain["model"], classes=[str(i) for i in range(classes)], preprocess=DIGITS_PREPROCESS
    )


def test_every_listed_model_has_a_config() -> None:
    assert _options("model") == list_models()


@pytest.mark.parametrize("name", ["lenet", "resnet18", "mobilenet_v3_small", "regnet_y_400mf"])
def test_model_config_builds_a_grayscale_ten_class_network(name: str, tmp_path) -> None:
    """A few through the whole config (every model builds in tests/models/test_zoo.py)."""
    cfg = compose_train([f"model={name}"], tmp_path)
    assert cfg.model.name == name and cfg.model.pretrained is False
    module = _module(cfg).eval()
    with torch.no_grad():
        logits = module(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize(
    ("name", "accelerator", "devices", "strategy"),
    [
        ("auto", "auto", 1, "auto"),
        ("cpu", "cpu", 1, "auto"),
        ("gpu", "gpu", 1, "auto"),
        ("ddp", "gpu", 2, "ddp"),
        ("ddp_cpu", "cpu", 2, "ddp"),
    ],
)
def test_trainer_configs(name: str, accelerator: str, devices: int, strategy: str, tmp_path) -> None:
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
        expected = "DDPStrategy" if strategy == "ddp" else "SingleDeviceStrategy"
        assert type(trainer.strategy).__name__ == expected


@pytest.mark.parametrize(
    ("name", "channels", "size"), [("digits", 1, 32), ("hand_gray", 1, 128), ("folder", 3, 224)]
)
def test_data_configs(name: str, channels: int, size: int, tmp_path) -> None:
    cfg = compose_train([f"data={name}", f"data.root={tmp_path}/set", "data.batch_size=7"], tmp_path)
    datamodule = instantiate(cfg.data)
    assert datamodule.preprocess.channels == channels
    assert datamodule.preprocess.image_size == size
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


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_config_keys() -> list[str]:
    """Every `group.key` the README's config table names."""
    text = README.read_text(encoding="utf-8")
    table = text.split("### Config groups", 1)[1].split("\n\n", 2)[1]
    keys = re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)(?:=[^`]*)?`", table)
    return sorted(set(keys))


def _value(value) -> str:
    """A composed value written back as an override value."""
    if isinstance(value, (list, ListConfig)):
        return "[]"
    if isinstance(value, DictConfig):  # a callback: =null turns it off
        return "null"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


#: README keys of the streaming source only
STREAMING_ONLY = {"data.device_decode"}


def test_every_key_in_the_readme_config_table_overrides_without_plus(tmp_path) -> None:
    keys = _readme_config_keys()
    assert {"data.cache_dir", "data.val_fraction", "model.pretrained", "trainer.max_epochs"} <= set(keys)
    by_options: dict[tuple[str, ...], list[str]] = {}  # one composition per set of added options
    for key in keys:
        # a key of an added callback (callbacks.ema.decay) is there once the table's option adds it
        name = key.split(".")[1] if key.startswith("callbacks.") else ""
        added = (
            [f"callbacks=[default,{name}]"] if (config_dir() / "callbacks" / f"{name}.yaml").is_file() else []
        )
        if key in STREAMING_ONLY:  # a key of the shards' DataModule is there with data=streaming
            added = ["data=streaming"]
        if key.startswith("loss."):  # the asymmetric loss's keys are there with loss=asl
            added = ["loss=asl"]
        if key.startswith("logger."):  # a tracker's keys are there once the table's option adds it
            added = [f"logger=[tensorboard,{key.split('.')[1]}]"]
        by_options.setdefault(tuple(added), []).append(key)
    for added, group in by_options.items():
        base = compose_train(list(added), tmp_path)
        values = {key: _value(OmegaConf.select(base, key, throw_on_missing=False)) for key in group}
        cfg = compose_train([*added, *(f"{k}={v}" for k, v in values.items())], tmp_path)  # unknown: refused
        for key, value in values.items():
            assert _value(OmegaConf.select(cfg, key, throw_on_missing=False)) == value, key


def test_the_issue_command_line_composes(tmp_path) -> None:
    cfg = compose_train(["data.cache_dir=some/dir", "data.val_fraction=0.2", "callbacks=none"], tmp_path)
    assert (cfg.data.cache_dir, cfg.data.val_fraction, dict(cfg.callbacks)) == ("some/dir", 0.2, {})
    off = compose_train(["callbacks.lr_monitor=null"], tmp_path)
    assert off.callbacks.lr_monitor is None and off.callbacks.model_checkpoint is not None


@pytest.mark.parametrize(
    ("base", "datamodule"),
    [
        ("base/data", ImageDataModule),
        ("base/folder", SplitFolderDataModule),
        ("data/streaming", StreamingDataModule),
    ],
)
def test_every_datamodule_argument_is_declared_in_its_data_config_and_no_other(base: str, datamodule) -> None:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        declared = set(compose(base)[base.split("/")[0]]) - {"_target_"}  # the group is its package
    assert declared == datamodule.arguments()


def test_debug_options_set_the_trainer(tmp_path) -> None:
    limit = compose_train(["debug=limit"], tmp_path).trainer
    assert (limit.max_epochs, limit.limit_train_batches, limit.limit_val_batches) == (1, 3, 2)
    assert compose_train(["debug=fast_dev_run"], tmp_path).trainer.fast_dev_run is True
    overfit = compose_train(["debug=overfit"], tmp_path)
    assert overfit.trainer.overfit_batches == 4 and list(overfit.data.augment) == []


def _pinned(node, prefix: str = "") -> dict[str, object]:
    """Leaf values of a recipe file, by dotted key (lists as a whole)."""
    flat = {}
    for key, value in node.items():
        if key == "defaults":
            continue
        if isinstance(value, DictConfig):
            flat.update(_pinned(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
    return flat


@pytest.mark.parametrize("name", _options("experiment"))
def test_an_experiment_recipe_composes_to_what_its_file_says(name: str, tmp_path) -> None:
    recipe = OmegaConf.load(config_dir() / "experiment" / f"{name}.yaml")
    cfg = compose_train([f"experiment={name}"], tmp_path)
    for key, value in _pinned(recipe).items():
        got = OmegaConf.select(cfg, key)
        assert (OmegaConf.to_container(got) if isinstance(got, ListConfig) else got) == value, key
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        choices = compose("train", [f"experiment={name}"], return_hydra_config=True).hydra.runtime.choices
    for entry in recipe.defaults:
        group, option = next(iter(entry.items()))
        group = group.removeprefix("override /")
        if isinstance(option, str):
            assert choices[group] == option
        else:  # several options of one group (callbacks=[default,ema]): each one's keys are there
            for name in option:
                assert set(OmegaConf.load(config_dir() / group / f"{name}.yaml")) <= set(cfg[group])
    # what defines a result is pinned: seed, trainer, batch size, lr, schedule, augmentation, epochs
    pinned = set(_pinned(recipe))
    if any("override /augment" in entry for entry in recipe.defaults):  # a recipe of conf/augment/
        pinned.add("data.augment")
    assert {"seed", "data.batch_size", "data.augment", "optimizer.lr", "trainer.max_epochs"} <= pinned
    assert {"override /trainer", "override /scheduler", "override /optimizer"} <= {
        next(iter(e)) for e in recipe.defaults
    }


def test_the_trainer_arguments_users_reach_for_override_without_a_plus(tmp_path) -> None:
    overrides = ["trainer=cpu", "trainer.accumulate_grad_batches=4", "trainer.check_val_every_n_epoch=2"]
    overrides += ["trainer.gradient_clip_val=1.0", "trainer.max_time=00:01:00:00"]
    cfg = compose_train(overrides, tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert (trainer.accumulate_grad_batches, trainer.check_val_every_n_epoch) == (4, 2)
    assert trainer.gradient_clip_val == 1.0
