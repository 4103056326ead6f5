"""Config mistakes end in one line naming the key (and the valid choices), exit code 2, nothing trained."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lightning.fabric.accelerators import CUDAAccelerator, MPSAccelerator

from helpers import compose_train, one_line_error
from lightcls.config.checks import check_command, check_devices
from lightcls.errors import LightclsError
from lightcls.tasks import train
from lightcls.workflows.checks import check_eval as check_eval_command
from lightcls.workflows.checks import check_train as check_train_command

LISTED = "`lightcls-info models` lists them"
RESNETS = "resnet18, resnet152, resnet101"


def _check(config: str, argv: list[str]) -> None:
    """`check_command` as the command does it (train and eval check values too)."""
    checks = {"train": check_train_command, "eval": check_eval_command}
    check_command(config, argv, checks.get(config))


def _error(config: str, argv: list[str]) -> str:
    """The one-line message the command gives for a command line."""
    return one_line_error(_check, config, argv)


# --- unknown group options ---


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model=resnet81",
            f"unknown model 'resnet81' (did you mean resnet18, resnet152, resnet101?); {LISTED}",
        ),
        ("model=vit", f"unknown model 'vit' (did you mean vit_b_16, vit_b_32, vit_h_14?); {LISTED}"),
        ("model=vitb16", f"unknown model 'vitb16' (did you mean vit_b_16, vit_l_16?); {LISTED}"),
        ("model=zzz", f"unknown model 'zzz'; {LISTED}"),
        (
            "data=digit",
            "unknown data 'digit' (did you mean digits?); choose one of: cifar10, cifar100, digits, "
            "fashion_mnist, folder, hand_gray, hf, imagenet, kmnist, mnist, multilabel, qmnist, stl10, "
            "streaming, svhn",
        ),
        (
            "optimizer=sgdd",
            "unknown optimizer 'sgdd' (did you mean sgd?); choose one of: adagrad, adam, adamw, sgd",
        ),
        (
            "scheduler=cos",
            "unknown scheduler 'cos' (did you mean cosine?); "
            "choose one of: cosine, none, step, warmup_cosine",
        ),
        (
            "trainer=tpu",
            "unknown trainer 'tpu' (did you mean gpu?); choose one of: auto, cpu, ddp, ddp_cpu, gpu",
        ),
        ("logger=neptune", "unknown logger 'neptune'; choose one of: csv, mlflow, none, tensorboard, wandb"),
        ("callbacks=all", "unknown callbacks 'all'; choose one of: default, early_stopping, ema, none"),
        (
            "experiment=digits_resnet",
            "unknown experiment 'digits_resnet' (did you mean digits_resnet18?); "
            "choose one of: digits_resnet18, folder_fast, folder_finetune, folder_scratch, "
            "hand_gray_resnet18",
        ),
    ],
)
def test_unknown_group_option(override: str, message: str) -> None:
    assert _error("train", [override]) == message


def test_unknown_option_in_the_other_commands() -> None:
    assert _error("info", ["model=resnet81"]).startswith("unknown model 'resnet81' (did you mean resnet18, ")
    assert _error("eval", ["ckpt_path=x", "data=hand"]) == (
        "unknown data 'hand' (did you mean hand_gray?); choose one of: cifar10, cifar100, digits, "
        "fashion_mnist, folder, hand_gray, hf, imagenet, kmnist, mnist, multilabel, qmnist, stl10, "
        "streaming, svhn"
    )


# --- unknown keys ---


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "data.batchsize=3",
            "unknown key 'data.batchsize' (did you mean data.batch_size?); "
            "use +data.batchsize=... to add a new key",
        ),
        (
            "optimizer.learning_rate=0.1",
            "unknown key 'optimizer.learning_rate'; use +optimizer.learning_rate=... to add a new key",
        ),
        (
            "trainer.max_epoch=3",
            "unknown key 'trainer.max_epoch' (did you mean trainer.max_epochs?); "
            "use +trainer.max_epoch=... to add a new key",
        ),
        (
            "scheduler.schedule.stepsize=2",
            "unknown key 'scheduler.schedule.stepsize' (did you mean scheduler.schedule.step_size?); "
            "use +scheduler.schedule.stepsize=... to add a new key",
        ),
        ("sed=1", "unknown key 'sed' (did you mean seed?); use +sed=... to add a new key"),
        (
            "model.sgd_lr=0.1",
            "model.sgd_lr is no longer a key: set optimizer.lr=... (a model's own SGD lr is in "
            "conf/model_optimizer/<model>_sgd.yaml)",
        ),
    ],
)
def test_misspelled_key(override: str, message: str) -> None:
    extra = ["scheduler=step"] if override.startswith("scheduler") else []
    assert _error("train", [*extra, override]) == message


def test_an_added_key_no_command_reads_is_refused() -> None:
    assert _error("eval", ["ckpt_path=m.ckpt", "+topkk=[1,3]"]) == (
        "unknown key 'topkk' (did you mean topk?): no lightcls command reads it "
        "(only trainer.*, callbacks.*, logger.*, optimizer.*, scheduler.* pass new keys to a library)"
    )
    _check(
        "train", ["+trainer.enable_progress_bar=false", "+optimizer.maximize=false"]
    )  # a library reads these


def test_a_required_key_left_out_is_one_line() -> None:
    assert _error("eval", []) == "ckpt_path is required: pass ckpt_path=..."
    assert _error("predict", ["ckpt_path=m.ckpt"]) == "input is required: pass input=..."
    assert (
        _error("eval", ["ckpt_path=m.ckpt", "split=train"])
        == "split=train: unknown split; choose one of val, test"
    )


def test_unknown_key_in_the_other_commands() -> None:
    assert _error("predict", ["ckpt_path=m.ckpt", "input=x", "top_k=5"]) == (
        "unknown key 'top_k' (did you mean topk?); use +top_k=... to add a new key"
    )
    assert _error("eval", ["ckpt_path=m.ckpt", "model=resnet18"]) == (
        "unknown key 'model'; use +model=... to add a new key"
    )


def test_added_keys_hydra_flags_and_overrides_pass(tmp_path: Path) -> None:
    _check("train", ["trainer.limit_train_batches=2", "optimizer=adam", "model=resnet18"])
    _check("train", [f"hydra.run.dir={tmp_path}/run", "hydra.job.chdir=false"])
    _check("train", ["--help", "model=nope"])  # Hydra's own help, as before
    _check("train", ["--info", "defaults"])
    assert not (tmp_path / "run").exists()
    # --cfg prints the config: composition is checked, values are not
    _check("train", ["--cfg", "job", "optimizer.lr=-1"])
    assert _error("train", ["--cfg", "job", "model=nope"]).startswith("unknown model 'nope'")


def test_syntax_and_sweep_without_multirun_are_one_line() -> None:
    assert _error("train", ["data.root=["]) == (
        "cannot parse 'data.root=[': no viable alternative at input '[' "
        "See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details"
    )
    assert _error("train", ["optimizer.lr=0.1,0.01"]) == (  # Hydra's own advice, on one line
        "Ambiguous value for argument 'optimizer.lr=0.1,0.01' "
        "1. To use it as a list, use key=[value1,value2] "
        "2. To use it as string, quote the value: key='value1,value2' "
        "3. To sweep over it, add --multirun to your command line"
    )


def test_multirun_checks_every_swept_value() -> None:
    _check("train", ["-m", "optimizer.lr=0.1,0.01", "model=lenet,resnet18"])
    assert _error("train", ["-m", "optimizer.lr=0.1,-0.01", "data.batch_size=8,16"]) == (
        "optimizer.lr=-0.01: Invalid learning rate: -0.01"
    )
    assert _error("train", ["--multirun", "model=lenet,resnet81"]).startswith("unknown model 'resnet81'")
    assert _error("train", ["-m", "data.batch_size=range(0,3)"]) == (
        "data.batch_size must be a positive integer, got 0"
    )


# --- values ---


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lr=-0.1"], "optimizer.lr=-0.1: Invalid learning rate: -0.1"),
        (["optimizer=adam", "optimizer.lr=-1e-3"], "optimizer.lr=-0.001: Invalid learning rate: -0.001"),
        (["optimizer.lr=0"], "optimizer.lr must be > 0, got 0"),
        (["optimizer.lr=fast"], "optimizer.lr must be a number > 0, got 'fast'"),
        (["optimizer.momentum=-0.9"], "optimizer.momentum=-0.9: Invalid momentum value: -0.9"),
        (
            ["optimizer=adam", "+optimizer.betas=[1.5,0.9]"],
            "optimizer.betas=[1.5, 0.9]: Invalid beta parameter at index 0: 1.5",
        ),
        (["data.batch_size=0"], "data.batch_size must be a positive integer, got 0"),
        (
            ["data.image_size=[32,16]"],
            "data.image_size must be a whole number >= 1 (the side of a square input), got [32, 16]",
        ),
        (["trainer.max_epochs=0"], "trainer.max_epochs must be a whole number >= 1, got 0"),
        (
            ["trainer.max_epochs=-1"],
            "trainer.max_epochs must be a whole number >= 1, got -1 "
            "(-1, training without end, is not supported: the lr schedule spans max_epochs)",
        ),
        (
            ["trainer=cpu", "trainer.devices=-1"],
            "trainer.devices=-1: `devices` selected with `CPUAccelerator` should be an int > 0.",
        ),
        (["lr_find=maybe"], "lr_find=maybe: give true or false"),
        (["data.device_augment=maybe"], "data.device_augment must be true or false, got 'maybe'"),
        (["cutmix=-1"], "cutmix must be a number >= 0 (its Beta alpha; 0: off), got -1"),
        (["data.balance=yes"], "data.balance must be one of none, sampler, loss, got 'yes'"),
        (["scheduler.interval=hour"], "scheduler.interval must be epoch or step, got 'hour'"),
        (
            ["scheduler.warmup_epochs=0.5"],
            "scheduler.warmup_epochs=0.5: a fraction of an epoch needs scheduler.interval=step",
        ),
        (
            ["optimizer.decay_norm_and_bias=maybe"],
            "optimizer.decay_norm_and_bias must be true or false, got 'maybe'",
        ),
        (["threshold=1.5"], "threshold=1.5: give a number from 0 to 1 (multi-label), or tune"),
        (["threshold=best"], "threshold=best: give a number from 0 to 1 (multi-label), or tune"),
        (["loss=asl", "loss.clip=1"], "loss.clip=1: give a number from 0 to below 1"),
        (
            ["data=multilabel", "data.root=/x", "loss.name=focal"],
            "loss.name=focal: choose one of auto, ce, bce, asl",
        ),
    ],
)
def test_bad_values(overrides: list[str], message: str) -> None:
    assert _error("train", overrides) == message


def test_more_cpu_devices_than_cpus_is_refused_before_any_trainer(monkeypatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: False))
    monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: False))
    expected = (
        "trainer.devices=99 but this machine has 2 CPUs (each CPU device is a process); "
        "use trainer.devices=2 or fewer"
    )
    assert _error("train", ["trainer=cpu", "trainer.devices=99"]) == expected
    assert _error("train", ["trainer.devices=99"]) == expected  # trainer=auto without a GPU: the CPU
    assert _error("train", ["trainer=ddp_cpu", "trainer.devices='99'"]) == expected
    _check("train", ["trainer=ddp_cpu"])  # 2 processes on 2 CPUs


def test_gpu_devices(monkeypatch) -> None:
    monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: False))
    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: False))
    no_gpu = "trainer.accelerator=gpu but this machine has no GPU; use trainer=cpu or trainer=auto"
    assert _error("train", ["trainer=gpu"]) == no_gpu
    assert _error("train", ["trainer=ddp"]) == no_gpu
    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: True))
    monkeypatch.setattr(CUDAAccelerator, "auto_device_count", staticmethod(lambda: 1))
    assert _error("train", ["trainer=ddp"]) == "trainer.devices=2 but this machine has 1 GPU"
    with pytest.raises(LightclsError, match=r"^trainer.devices=0 asks for no GPU; use trainer=cpu$"):
        check_devices("gpu", 0)


def test_train_checks_before_it_builds_anything(tmp_path: Path) -> None:
    cfg = compose_train(["optimizer.lr=-0.1", "trainer=cpu"], tmp_path / "run")
    with pytest.raises(LightclsError, match=r"^optimizer.lr=-0.1: Invalid learning rate: -0.1$"):
        train(cfg)
    assert not (tmp_path / "run").exists()
