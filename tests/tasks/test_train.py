"""The training task end to end: in-process through hydra.compose and through the real command line."""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import (
    REPO,
    SMALL_TRAIN,
    TINY,
    assert_refused,
    compose_task,
    compose_train,
    free_port,
    one_line_error,
    quoted,
    refused_in_process,
    run_cli,
    start_cli,
)
from lightcls.data.check import CACHE_FILE, check_dataset
from lightcls.tasks import train

SMALL = SMALL_TRAIN

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
    assert {"hp/best_val_top1", "hp/test_top1"} <= _tags(trained_run)  # TensorBoard's HPARAMS view
    events = EventAccumulator(str(trained_run / "tensorboard"))
    events.Reload()
    assert "_hparams_/session_end_info" in events.PluginTagToContent("hparams")
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
    last = run_dir / "checkpoints" / "last.ckpt"
    overrides = [f"data.root={data_root}", "trainer=cpu", "trainer.max_epochs=4", f"ckpt_path={quoted(last)}"]
    train(compose_train(overrides, run_dir))  # the run dir the command gives it: test_rundir.py
    resumed = _metrics(run_dir)
    assert resumed["epochs"] == 4 and resumed["global_step"] == 4 * steps_per_epoch
    assert resumed["best_val_top1"] >= first["best_val_top1"]  # best tracking survived the resume


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_shares_one_run_dir_and_tests_each_image_once(
    make_split_folder, tmp_path: Path
) -> None:
    root = make_split_folder(per_class={"training_set": 8, "val_set": 3, "test_set": 3})  # 9 test images
    result = run_cli(
        [
            *SMALL,
            f"data.root={root}",
            "trainer=ddp_cpu",
            "data.batch_size=4",
            "trainer.max_epochs=1",
            "logger=tensorboard",
            f"paths.outputs_root={tmp_path}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    metrics = _metrics(run_dir)
    assert metrics["epochs"] == 1 and metrics["global_step"] == 3  # 24 images / (2 ranks x 4) a step
    assert metrics["test_images"] == 9  # a padding sampler would count 10 (one image twice)
    assert (run_dir / "train_ddp_process_1.log").is_file()
    assert {"val/top1", "train/loss_epoch"} <= _tags(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("launch", ["env", "torchrun"])
def test_two_nodes_on_localhost_train_as_one_process_with_twice_the_batch(
    make_split_folder, tmp_path: Path, launch: str
) -> None:
    root = make_split_folder(per_class={"training_set": 10, "val_set": 3, "test_set": 3})  # 30 train images
    args = [*SMALL, f"data.root={root}", "trainer.max_epochs=1", f"paths.outputs_root={tmp_path}"]
    train(compose_train([*args, "data.batch_size=8"], tmp_path / "single"))

    port, run_dir = free_port(), tmp_path / "nodes"
    nodes = [*args, "data.batch_size=4", "trainer=ddp_cpu", "trainer.num_nodes=2", "trainer.devices=1"]
    nodes.append(f"hydra.run.dir={run_dir}")  # every node names the one run dir (a shared file system)
    processes = []
    for rank in (0, 1):
        if launch == "env":  # what a cluster's scheduler sets on each node
            env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(rank)}
            processes.append(start_cli(nodes, tmp_path, env))
        else:
            rendezvous = [
                "--nnodes=2",
                "--nproc_per_node=1",
                f"--node_rank={rank}",
                "--master_addr=127.0.0.1",
            ]
            launcher = ["-m", "torch.distributed.run", *rendezvous, f"--master_port={port}"]
            processes.append(start_cli(nodes, tmp_path, launcher=launcher))
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]

    one, two = _metrics(tmp_path / "single"), _metrics(run_dir)
    # 30 images: ceil(30 / 8) = 4 steps an epoch alone; ceil(15 / 4) = 4 on each of two nodes
    assert two["global_step"] == one["global_step"] == 4 and two["epochs"] == 1
    assert two["test_images"] == one["test_images"] == 9  # tested over the whole split, each image once
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "metrics.json").is_file()) == ["nodes", "single"]


# --- the data check at the start of training ---


def _truncated_jpeg(path: Path) -> Path:
    """A JPEG cut after 200 bytes: Pillow opens it but cannot decode it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def test_a_broken_image_fails_the_run_before_training(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    broken = _truncated_jpeg(root / "training_set" / "rock" / "broken.jpg")
    cfg = compose_train([*SMALL, f"data.root={root}", "trainer.max_epochs=1"], tmp_path / "run")
    assert one_line_error(train, cfg) == (
        f"1 broken image(s) in {root}: {broken}: cannot decode image (Truncated File Read); "
        f"run `lightcls-data check data.root={root}` for the full list, "
        "or set data.on_broken=skip to train without them"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_many_broken_images_are_named_in_one_line(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    for i in range(5):
        (root / "val_set" / "paper" / f"empty{i}.png").write_bytes(b"")
    cfg = compose_train([*SMALL, f"data.root={root}", "trainer.max_epochs=1"], tmp_path / "run")
    message = one_line_error(train, cfg)
    assert re.match(r"^5 broken image\(s\) in .*empty0\.png: cannot decode image", message)
    assert "empty2.png" in message and "empty3.png" not in message
    assert "; and 2 more; run `lightcls-data check" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_skip_trains_without_the_broken_files(make_split_folder, tmp_path: Path, caplog) -> None:
    root = make_split_folder()
    broken = _truncated_jpeg(root / "training_set" / "rock" / "broken.jpg")
    run_dir = tmp_path / "run"
    overrides = [
        *SMALL,
        f"data.root={root}",
        "data.on_broken=skip",
        "data.batch_size=1",
        "trainer.max_epochs=1",
    ]
    with caplog.at_level(logging.WARNING):
        metrics = train(compose_train(overrides, run_dir))
    assert metrics["global_step"] == 12  # 3 classes x 4 good images, one per step: the broken one left out
    skipped = [r.getMessage() for r in caplog.records if "on_broken=skip" in r.getMessage()]
    assert skipped == [f"data.on_broken=skip: training without 1 broken image(s): {broken}"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_leakage_warns_at_training_start(make_split_folder, tmp_path: Path, caplog) -> None:
    root = make_split_folder()
    for name in ("paper", "rock", "scissors"):  # 6 images of the training split copied into val or test
        for i, split in ((0, "val_set"), (1, "test_set")):
            shutil.copy(
                root / "training_set" / name / f"{name}0{i}.png", root / split / name / f"{name}0{i}.png"
            )
    run, args = tmp_path / "run", [*SMALL, f"data.root={root}", "trainer.max_epochs=1"]
    with caplog.at_level(logging.WARNING):  # report.html on: its eval/ is the run's own test, no check again
        metrics = train(compose_train(args, run, report=True))
    assert (run / "report.html").is_file()
    assert json.loads((run / "eval" / "eval.json").read_text())["top1"] == metrics["test_top1"]
    leaks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("leakage:")]
    assert leaks[0] == (
        f"leakage: the same image is in train and val: {root / 'training_set/paper/paper00.png'} (train), "
        f"{root / 'val_set/paper/paper00.png'} (val) (see lightcls-data check data.root={root})"
    )
    messages = [r.getMessage() for r in caplog.records]
    assert len(leaks) == 3  # the first three, then a count, not one line per leaked image
    assert messages[messages.index(leaks[-1]) + 1] == "and 3 more images in more than one split"


def test_a_clean_set_warns_of_no_leak(make_split_folder, tmp_path: Path, caplog) -> None:
    root = make_split_folder()
    with caplog.at_level(logging.WARNING):
        train(compose_train([*SMALL, f"data.root={root}", "trainer.max_epochs=1"], tmp_path / "run"))
    assert "leakage" not in caplog.text


def test_the_data_check_is_cached_between_runs(digits_root: Path, tmp_path: Path) -> None:
    cfg = compose_train([f"data.root={digits_root}"], tmp_path / "run")
    instantiate(cfg.data).prepare_data()
    cache = json.loads((digits_root / CACHE_FILE).read_text())
    assert len(cache) == 1797
    assert check_dataset(digits_root).read == 0


def test_unknown_policy_is_one_line(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    cfg = compose_train([*SMALL, f"data.root={root}", "data.on_broken=ignore"], tmp_path / "run")
    assert one_line_error(train, cfg) == "data.on_broken must be one of fail, skip, got 'ignore'"


def _epochs_csv(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_continuing_with_more_epochs_continues_the_schedule(digits_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = train(compose_train([f"data.root={digits_root}", "trainer=cpu", "trainer.max_epochs=2"], run_dir))
    last = run_dir / "checkpoints" / "last.ckpt"
    more = [f"data.root={digits_root}", "trainer=cpu", "trainer.max_epochs=3", f"ckpt_path={quoted(last)}"]
    resumed = train(compose_train(more, run_dir))
    rows = _epochs_csv(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    lrs = [float(r["lr"]) for r in rows]
    assert all(lr > 0 for lr in lrs) and lrs == sorted(lrs, reverse=True), lrs  # no lr 0, never rising
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.025)  # the first run's own cosine
    assert resumed["epochs"] == 3 and resumed["final_val_top1"] >= first["final_val_top1"]


def test_each_epoch_is_one_row_of_metrics_csv_and_one_log_line(
    trained_run: Path, make_split_folder, tmp_path, caplog
):
    rows = _epochs_csv(trained_run)  # the 3-epoch session run
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["val_top1"]) > 0 and float(r["train_loss"]) > 0 and float(r["lr"]) > 0 for r in rows)
    root = make_split_folder()
    with caplog.at_level(logging.INFO, logger="lightcls"):
        train(compose_train([*SMALL, f"data.root={root}", "trainer.max_epochs=2"], tmp_path / "run"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[Epoch ")]
    assert [line.split("]")[0] for line in lines] == ["[Epoch 1/2", "[Epoch 2/2"]
    assert re.fullmatch(
        r"\[Epoch 2/2\] train loss \S+ top1 \S+ lr \S+ time \S+s data \S+s \| val loss \S+ top1 \S+", lines[1]
    )


def test_metrics_json_splits_the_run_time(trained_run: Path) -> None:
    seconds = _metrics(trained_run)["seconds"]
    assert list(seconds) == ["startup", "data", "model", "train", "test", "report", "teardown"]
    assert all(v >= 0 for v in seconds.values()) and seconds["train"] > 0 and seconds["test"] > 0


class _Weights(Callback):
    """Keeps a copy of the weights after every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def test_ema_checkpoints_the_averaged_weights_and_eval_reproduces_the_test_top1(
    digits_root: Path, tmp_path: Path
) -> None:
    from lightcls.tasks.evaluate import evaluate

    run = tmp_path / "run"
    weights = _Weights()
    overrides = [f"data.root={digits_root}", TINY, "trainer.max_epochs=2", "callbacks=[default,ema]"]
    metrics = train(compose_train([*overrides, "callbacks.ema.decay=0.5", "logger=none"], run), [weights])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # EMA by hand over the 6 steps: the first step's weights, then 0.5 x average + 0.5 x new
    expected = dict(weights.steps[0])
    for step in weights.steps[1:]:
        expected = {k: 0.5 * expected[k] + 0.5 * v if v.is_floating_point() else v for k, v in step.items()}
    name = "net.features.0.weight"
    assert len(weights.steps) == 6
    assert torch.allclose(ckpt["state_dict"][name], expected[name], atol=1e-6)
    assert torch.equal(ckpt["current_model_state"][name], weights.steps[-1][name])
    assert not torch.allclose(ckpt["state_dict"][name], ckpt["current_model_state"][name])
    report = evaluate(
        compose_task("eval", [f"ckpt_path={quoted(run / metrics['best_ckpt'])}"], tmp_path / "ev")
    )
    assert report["top1"] == pytest.approx(metrics["test_top1"])


def test_lr_find_sets_the_learning_rate_and_says_so(digits_root: Path, tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="lightcls"):
        cfg = compose_train(
            [f"data.root={digits_root}", "trainer.max_epochs=1", "lr_find=true", "logger=none"], run
        )
        metrics = train(cfg)
    assert metrics["epochs"] == 1 and metrics["global_step"] == 20  # the range test's 100 steps not counted
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lr_find:")]
    assert len(said) == 1 and said[0].endswith("(the range test's suggestion; the config said 0.05)")
    chosen = float(re.search(r"optimizer.lr=(\S+)", said[0]).group(1))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["optimizer"]["lr"] == pytest.approx(chosen, rel=1e-3) != 0.05
    assert ckpt["optimizer_states"][0]["param_groups"][0]["initial_lr"] == pytest.approx(chosen, rel=1e-3)
    assert not list(run.glob(".lr_find*.ckpt"))  # Lightning's own temporary checkpoint is gone


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_recipe_trains_one_tiny_epoch(name: str, digits_root: Path, tmp_path: Path) -> None:
    # small and offline: batches of 8 at 32x32, no download of published weights (folder_finetune's)
    overrides = [f"experiment={name}", TINY, f"data.root={digits_root}", "logger=none", "data.batch_size=8"]
    overrides += ["trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "data.image_size=32"]
    overrides += ["model.pretrained=false"]
    metrics = train(compose_train(overrides, tmp_path / "run"))
    assert metrics["epochs"] == 1 and metrics["global_step"] == 3 and metrics["test_images"] > 0


def test_balance_loss_weights_the_runs_loss_by_inverse_class_frequency(
    make_split_folder, tmp_path: Path
) -> None:
    root = make_split_folder(per_class={"training_set": 2, "val_set": 1}, classes=("a", "b"))
    for i in range(2, 8):  # class a: 8 training images, class b: 2
        Image.new("L", (16, 16), 60 + i).save(root / "training_set" / "a" / f"more{i:02d}.png")
    run = tmp_path / "run"
    train(compose_train([f"data.root={root}", *SMALL, "trainer.max_epochs=1", "data.balance=loss"], run))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["class_weights"] == pytest.approx([10 / 16, 10 / 4])
    assert torch.allclose(ckpt["state_dict"]["criterion.weight"], torch.tensor([10 / 16, 10 / 4]))


class _CrashAt(Callback):
    """A crash as epoch `epoch` (0-based) starts: like a kill -9, no checkpoint is saved on the way out."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("killed")


def test_last_ckpt_is_every_epoch_when_val_never_improves_and_a_crash_resumes_there(
    make_split_folder, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [*SMALL, f"data.root={make_split_folder()}", "optimizer.lr=1e-12", "trainer.max_epochs=4"]
    with pytest.raises(RuntimeError, match="killed"):  # val top-1 flat from epoch 1: no new best after it
        train(compose_train(args, run), callbacks=[_CrashAt(3)])
    last = run / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == (2, 3)  # the end of epoch 3 (one step an epoch)
    assert len(list(run.glob("checkpoints/best-*.ckpt"))) == 1

    more = [*args, "trainer.max_epochs=5", f"ckpt_path={quoted(last)}"]  # resume, with a longer run
    metrics = train(compose_train(more, run))
    assert (metrics["epochs"], metrics["global_step"]) == (5, 5)
    assert [int(r["epoch"]) for r in _epochs_csv(run)] == [1, 2, 3, 4, 5]  # only the new epochs trained
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5
    best = run / metrics["best_ckpt"]  # epoch 1's: last.ckpt was a hard link to it, then rewritten apart
    assert torch.load(best, map_location="cpu", weights_only=True)["global_step"] == 1
    assert not last.samefile(best)


def test_a_run_dir_holding_another_runs_results_is_refused(
    trained_run: Path, make_split_folder, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / ".hydra").mkdir(exist_ok=True)
    (run / ".hydra" / "config.yaml").write_text("the first run's\n")
    refused = refused_in_process("train", [f"hydra.run.dir={run}", "trainer.max_epochs=1"], capsys)
    assert_refused(
        refused,
        f"run dir {run} holds another run's results (metrics.json, metrics.csv, checkpoints/); resume that "
        f"run with ckpt_path={run}/checkpoints/last.ckpt, choose another hydra.run.dir, or pass "
        "overwrite=true to replace them",
    )
    assert (run / ".hydra" / "config.yaml").read_text() == "the first run's\n"
    args = [*SMALL, f"data.root={make_split_folder()}", "trainer.max_epochs=1"]
    message = one_line_error(train, compose_train(args, run))  # the task itself (API, sweep jobs)
    assert message.startswith(f"run dir {run} holds another run's results")
    metrics = train(compose_train([*args, "overwrite=true"], run))
    assert metrics["last_ckpt"] == "checkpoints/last.ckpt"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [metrics["best_ckpt"][12:], "last.ckpt"]
    assert (run / "checkpoints" / "last.ckpt").samefile(run / metrics["best_ckpt"])  # one step: one file
    assert [r["epoch"] for r in _epochs_csv(run)] == ["1"]


def test_the_run_that_builds_the_decode_cache_repeats_exactly(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    args = [*SMALL, f"data.root={root}", "trainer.max_epochs=1", "data.cache=true"]
    weights = []
    for run in ("first", "second"):  # the first builds the cache, the second reads it
        train(compose_train(args, tmp_path / run))
        last = tmp_path / run / "checkpoints" / "last.ckpt"
        weights.append(torch.load(last, map_location="cpu", weights_only=True)["state_dict"])
    assert list(root.glob(".lightcls_cache/*.npy"))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_validation_every_other_epoch_still_saves_last_ckpt_every_epoch(make_split_folder, tmp_path) -> None:
    run = tmp_path / "run"
    args = [*SMALL, f"data.root={make_split_folder()}", "trainer.max_epochs=3"]
    train(compose_train([*args, "trainer.check_val_every_n_epoch=2"], run))  # no + needed
    rows = _epochs_csv(run)
    assert [(r["epoch"], bool(r["val_top1"])) for r in rows] == [("1", False), ("2", True), ("3", False)]
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == (2, 3)


def test_calibrate_saves_the_fitted_temperature_in_the_tested_checkpoint(
    digits_root: Path, tmp_path: Path, caplog
) -> None:
    run = tmp_path / "run"
    overrides = [
        f"data.root={digits_root}",
        "trainer.max_epochs=3",
        "report=false",
        "logger=none",
        "calibrate=true",
    ]
    with caplog.at_level(logging.INFO, logger="lightcls"):
        metrics = train(compose_train(overrides, run))
    saved = {
        name: float(torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]["temperature"])
        for name in (Path(metrics["best_ckpt"]).name, "last.ckpt")
    }
    assert list(saved.values()) == [pytest.approx(metrics["temperature"], abs=1e-5)] * 2
    assert metrics["temperature"] != 1
    fitted = re.search(
        r"calibrate=true: temperature ([\d.]+) fitted on (\d+) val images .* ECE ([\d.]+) -> ([\d.]+)",
        caplog.text,
    )
    assert fitted and int(fitted.group(2)) == 270 and float(fitted.group(4)) < float(fitted.group(3))
