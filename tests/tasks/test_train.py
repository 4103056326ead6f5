"""The training task end to end: in-process through hydra.compose and through the real command line."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_RUN, compose_train, run_cli
from lightcls.tasks import train

SPEC_KEYS = {
    "best_val_top1",
    "best_epoch",
    "test_top1",
    "test_top5",
    "best_ckpt",
    "last_ckpt",
    "classes",
    "epochs",
    "train_seconds",
}


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _tags(run_dir: Path, kind: str = "scalars") -> set[str]:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return set(events.Tags()[kind])


def test_lenet_learns_digits_and_writes_the_run_dir(trained_run: Path) -> None:
    metrics = _metrics(trained_run)
    assert metrics.keys() >= SPEC_KEYS
    assert metrics["best_val_top1"] > 0.7 and metrics["test_top1"] > 0.7  # chance is 0.1
    assert metrics["epochs"] == 3 and 1 <= metrics["best_epoch"] <= 3
    assert (trained_run / metrics["best_ckpt"]).is_file() and metrics["best_ckpt"].startswith(
        "checkpoints/best-"
    )
    assert (
        metrics["last_ckpt"] == "checkpoints/last.ckpt" and (trained_run / "checkpoints/last.ckpt").is_file()
    )
    assert metrics["classes"][:2] == ["zero", "one"]
    scalars = {
        "train/loss_step",
        "train/loss_epoch",
        "train/top1",
        "val/loss",
        "val/top1",
        "val/top5",
        "lr-SGD",
    }
    assert scalars <= _tags(trained_run)
    assert _tags(trained_run, "images") == {"test/confusion_matrix"}


def test_checkpoint_is_self_contained_and_loads_without_unpickling_code(trained_run: Path) -> None:
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    hparams = ckpt["hyper_parameters"]
    assert hparams["model"]["name"] == "lenet"
    assert hparams["preprocess"] == {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]}
    assert len(hparams["classes"]) == 10


def test_no_val_split_trains_and_keeps_last_only(make_split_folder, tmp_path: Path, caplog) -> None:
    root = make_split_folder(per_class={"training_set": 4})
    run_dir = tmp_path / "run"
    metrics = train(
        compose_train(
            [f"data.root={root}", "data=folder", "data.image_size=16", "trainer.max_epochs=1", "trainer=cpu"],
            run_dir,
        )
    )
    assert metrics["best_val_top1"] is None and metrics["test_top1"] is None and metrics["best_ckpt"] is None
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert "no val split" in caplog.text and caplog.text.count("no val split") == 1


def test_fine_tune_from_our_checkpoint_with_another_class_count(
    trained_run: Path, make_split_folder, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="lightcls")
    root = make_split_folder()
    weights = trained_run / "checkpoints" / "last.ckpt"
    metrics = train(
        compose_train(
            [
                f"data.root={root}",
                "data=hand_gray",
                "data.image_size=32",
                f"model.pretrained={weights}",
                "trainer.max_epochs=1",
                "trainer=cpu",
            ],
            tmp_path / "run",
        )
    )
    assert metrics["classes"] == ["paper", "rock", "scissors"]
    assert "classifier head): classifier.3.bias, classifier.3.weight" in caplog.text


@pytest.mark.slow
def test_resume_from_last_continues_epoch_and_step(trained_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "first"
    shutil.copytree(trained_run, run_dir)
    first = _metrics(run_dir)
    steps_per_epoch = first["global_step"] // first["epochs"]
    data_root = json.loads((run_dir / "metrics.json").read_text())["data"]
    result = run_cli(
        [
            f"data.root={data_root}",
            "trainer=cpu",
            "trainer.max_epochs=5",
            f"ckpt_path={run_dir}/checkpoints/last.ckpt",
            f"paths.outputs_root={tmp_path}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = _metrics(run_dir)  # a resumed run continues in its own run dir
    assert resumed["epochs"] == 5 and resumed["global_step"] == 5 * steps_per_epoch
    assert resumed["best_val_top1"] >= first["best_val_top1"]  # best tracking survived the resume
    assert not (tmp_path / "train").exists()


@pytest.mark.slow
def test_multirun_sweep_gives_one_dir_per_job(digits_root: Path, tmp_path: Path) -> None:
    result = run_cli(
        [
            "-m",
            "optimizer.lr=0.1,0.01",
            "data.batch_size=16,32",
            f"data.root={digits_root}",
            "trainer=cpu",
            *TINY_RUN,
            "logger=none",
            f"paths.outputs_root={tmp_path}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1", "2", "3"]
    configs = set()
    for job in jobs:
        assert (sweep / job / "metrics.json").is_file() and (
            sweep / job / "checkpoints" / "last.ckpt"
        ).is_file()
        text = (sweep / job / ".hydra" / "overrides.yaml").read_text()
        configs.add(tuple(line for line in text.splitlines() if "lr=" in line or "batch_size=" in line))
    assert len(configs) == 4


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_shares_one_run_dir(digits_root: Path, tmp_path: Path) -> None:
    result = run_cli(
        [
            f"data.root={digits_root}",
            "trainer=ddp_cpu",
            "trainer.max_epochs=2",
            f"paths.outputs_root={tmp_path}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    metrics = _metrics(run_dir)
    assert metrics["epochs"] == 2 and metrics["best_val_top1"] > 0.3
    assert metrics["global_step"] == 2 * 10  # 1257 images / (2 ranks x 64) = 10 steps per epoch
    assert (run_dir / "train_ddp_process_1.log").is_file()
    assert {"val/top1", "train/loss_epoch"} <= _tags(run_dir)


def test_missing_data_set_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    result = run_cli(["data=hand_gray", f"paths.outputs_root={tmp_path}/out"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    root = tmp_path / "data" / "hand_gray"
    assert lines[-1] == (
        f"error: data set not found at {root}: expected {root}/classes.txt, "
        f"{root}/training_set/<class>/*.png, {root}/val_set/<class>/..., "
        "optional test_set/, val.txt, test.txt (or train/ val/ test/, or plain class folders); "
        "or set data.root=/path/to/hand_gray"
    )


def test_gpu_trainer_without_a_gpu_is_one_line(digits_root: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_cli([f"data.root={digits_root}", "trainer=gpu", f"paths.outputs_root={tmp_path}"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert result.stderr.strip().splitlines()[-1] == (
        "error: trainer.accelerator=gpu but this machine has no GPU; use trainer=cpu or trainer=auto"
    )


def test_gpu_switches_are_ignored_cleanly_on_the_cpu(digits_root: Path, tmp_path: Path) -> None:
    metrics = train(
        compose_train(
            [
                f"data.root={digits_root}",
                "trainer=cpu",
                "trainer.max_epochs=1",
                "model.channels_last=true",
                "+trainer.limit_train_batches=8",
                "+trainer.limit_val_batches=2",
            ],
            tmp_path / "run",
        )
    )
    assert metrics["train_images_per_second"] > 0  # 8 batches, the first 5 excluded
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["net.features.0.weight"].is_contiguous()  # not channels_last on the CPU


def test_compiled_training_saves_plain_keys(digits_root: Path, tmp_path: Path) -> None:
    from lightcls.module import ClassificationModule

    module = ClassificationModule(
        {"name": "lenet", "compile": True},
        list("0123456789"),
        {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]},
    )
    module.on_fit_start()
    assert all(
        key.startswith("net.features.") or key.startswith("net.classifier.") for key in module.state_dict()
    )
