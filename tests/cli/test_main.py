"""The console commands as a user runs them: one-line mistakes before any run dir, run dirs, sweeps."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest
from lightning.fabric.utilities.exceptions import MisconfigurationException

from helpers import TINY, assert_refused, compose_train, hydra_argv, refused_in_process, run_cli, start_cli
from lightcls.cli.main import run_task
from lightcls.tasks import train


def test_unknown_model_is_refused_before_any_run_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(["model=resnet81", f"paths.outputs_root={out}"], tmp_path, timeout=120)  # the shell
    listed = "`lightcls-info models` lists them"
    assert_refused(
        result, f"unknown model 'resnet81' (did you mean resnet18, resnet152, resnet101?); {listed}"
    )
    assert not out.exists()


def test_a_bad_value_is_the_optimizers_own_error_before_any_run_dir(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    result = refused_in_process("train", ["optimizer.lr=-0.1", f"paths.outputs_root={out}"], capsys)
    assert_refused(result, "optimizer.lr=-0.1: Invalid learning rate: -0.1")
    assert not out.exists()


def test_a_mistake_found_by_the_task_is_one_line(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data" / "hand_gray"
    with pytest.raises(SystemExit) as stop:  # as the command runs the task: one line, exit code 2
        run_task(train, compose_train(["data=hand_gray", f"data.root={root}"], tmp_path / "run"))
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        f"error: data set not found at {root}: expected {root}/classes.txt, "
        f"{root}/training_set/<class>/*.png, {root}/val_set/<class>/..., "
        "optional test_set/, val.txt, test.txt (or train/ val/ test/, or plain class folders); "
        "or set data.root=/path/to/hand_gray\n"
    )


def test_multiline_lightning_errors_print_as_one_line(capsys) -> None:
    def task(cfg) -> None:
        raise MisconfigurationException("You requested gpu: [0, 1]\n But your machine only has: [0]")

    with pytest.raises(SystemExit) as stop:
        run_task(task, None)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: You requested gpu: [0, 1] But your machine only has: [0]\n"


@pytest.mark.slow
def test_a_default_run_is_quiet_and_logs_one_line_per_epoch(digits_root: Path, tmp_path: Path) -> None:
    result = run_cli(
        [f"data.root={digits_root}", "trainer=cpu", "trainer.max_epochs=2", f"paths.outputs_root={tmp_path}"],
        tmp_path,
        report=True,  # as a user runs it: report.html at the end
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = result.stdout + result.stderr
    for noise in ("Warning", "warn(", "Tip", "GPU available", "Total FLOPs", "Restoring states"):
        assert noise not in console, noise
    logged = [x for x in console.splitlines() if x.startswith("[20")]
    assert all("][lightcls." in x for x in logged), logged  # no other library's INFO lines
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    settings = "optimizer sgd, lr 0.05, wd 0.0001 (the default); "
    assert settings + "schedule cosine over 2 epochs (the default); batch 64 (data=digits)" in console
    lines = [x for x in (run_dir / "train.log").read_text().splitlines() if "[Epoch " in x]
    assert len(lines) == 2 and all("| val loss" in x for x in lines)
    assert [x.split("[Epoch ")[1].split("]")[0] for x in lines] == ["1/2", "2/2"]
    assert result.stdout.rstrip().endswith(f"-> {run_dir / 'report.html'}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = json.loads((run_dir / "eval" / "eval.json").read_text())  # the best checkpoint's test
    assert evaluation["ckpt"] == str(run_dir / metrics["best_ckpt"]) and evaluation["num_images"] == 270
    assert evaluation["top1"] == pytest.approx(metrics["test_top1"], abs=1e-6)
    assert not (run_dir / "eval" / "scores.csv").exists()  # every image x every class: lightcls-eval's
    with (run_dir / "eval" / "predictions.csv").open() as f:
        wrong = sum(row["correct"] == "0" for row in csv.DictReader(f))
    assert wrong == round(270 * (1 - metrics["test_top1"]))
    page = (run_dir / "report.html").read_text()
    assert "Per class (test split, 270 images)" in page and 'alt="loss"' in page
    assert f" on <code>{digits_root}</code>, written " in page


@pytest.mark.slow
def test_a_joblib_sweep_runs_its_jobs_at_once_in_their_dirs_summarizes_failures_and_continues_its_best(
    digits_root: Path, tmp_path: Path
) -> None:
    """Two learning rates, each on the digits and on a root with no data set (data.builtin=null: nothing
    written there): the jobs at that root fail, each with its reason in its dir; the sweep still ends with
    its summary, the failures named, and exit code 1."""
    missing = tmp_path / "missing"
    args = ["-m", "hydra/launcher=joblib", TINY, "logger=none", "optimizer.lr=0.1,0.01"]
    args += [f"data.root={digits_root},{missing}", "data.builtin=null"]
    args += ["hydra.launcher.n_jobs=2", "data.num_workers=1"]  # DataLoader workers inside joblib's workers
    result = run_cli([*args, f"paths.outputs_root={tmp_path}"], tmp_path)
    reason = f"data set not found at {missing}: expected {missing}/classes.txt"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    ended = json.loads((sweep / "summary.json").read_text())  # written at the end of the multirun
    assert [r["best_val_top1"] is not None for r in ended] == [True, True, False, False]  # failed last
    assert not any("failed" in r for r in ended[:2])
    failed = [Path(r["run_dir"]).name for r in ended[2:]]
    for row, job in zip(ended[2:], failed, strict=True):  # each failed job's reason in its row and its dir
        assert row["failed"].startswith(reason)
        assert (sweep / job / "failed.txt").read_text().startswith(reason)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: 2 of 4 jobs failed ({failed[0]}: {reason}"), last
    rows = list(csv.DictReader((sweep / "summary.csv").open()))[:2]  # the two that trained, best first
    assert sorted(row["optimizer.lr"] for row in rows) == ["0.01", "0.1"]
    best = [float(row["best_val_top1"]) for row in rows]
    assert best == sorted(best, reverse=True) and "best first" in " ".join(result.stdout.split())
    cores = os.cpu_count() or 1  # two jobs at once on this machine's cores: each takes its share
    jobs, threads = min(2, cores), max(1, cores // 2)
    for row in rows:
        run_dir = Path(row["run_dir"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["best_val_top1"] == float(row["best_val_top1"]) and metrics["epochs"] == 1
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        given = (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert f"optimizer.lr={row['optimizer.lr']}" in given
        log = (run_dir / "train.log").read_text()
        assert f"joblib launcher, {jobs} jobs at once: this job uses {threads} of {cores}" in log

    # ckpt_path=<sweep dir> continues the best job, from its last.ckpt, in its own run dir
    best_job = Path(rows[0]["run_dir"])
    before = json.loads((best_job / "metrics.json").read_text())
    again = [f"data.root={digits_root}", "trainer=cpu", TINY, "logger=none", f"paths.outputs_root={tmp_path}"]
    argv = hydra_argv("train", [f"ckpt_path={sweep}", "trainer.max_epochs=2", *again])  # the command's choice
    assert argv[-1] == f'hydra.run.dir="{best_job}"'
    train(compose_train(argv[:-1], best_job))  # the job Hydra runs there, in this process
    after = json.loads((best_job / "metrics.json").read_text())
    assert (after["epochs"], after["global_step"]) == (2, 2 * before["global_step"])
    assert not (tmp_path / "train" / "runs").exists()  # no new run dir

    from lightcls.workflows.page import build_report  # lightcls-report <sweep dir>: its best run's page

    assert build_report(sweep) == best_job / "report.html" and (best_job / "eval" / "eval.json").is_file()


def test_the_slurm_launcher_config_composes_over_submitits(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from lightcls.config import config_dir

    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.nodes=2"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        launcher = compose("train", overrides, return_hydra_config=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.nodes, launcher.max_num_timeout) == ("gpu", 2, 3)


@pytest.mark.slow
def test_a_requeued_cluster_job_continues_from_its_own_last_ckpt(digits_root: Path, tmp_path: Path) -> None:
    """A sweep through submitit (its local executor). SLURM (and submitit's local controller) send USR2
    before a time limit or on preemption: submitit requeues the job with the same overrides, and the job
    continues in its run dir from last.ckpt; the sweep then ends as a sweep. (A sweep's failed job: the
    joblib test, as the summary is the same for every launcher.)"""
    args = ["-m", "hydra/launcher=submitit_local", f"data.root={digits_root}"]
    args += ["trainer=cpu", "logger=none", "trainer.max_epochs=8", "trainer.limit_train_batches=5"]
    args += ["trainer.limit_val_batches=1", f"paths.outputs_root={tmp_path}"]
    sweep = start_cli(args, tmp_path)
    deadline, saved = time.monotonic() + 180, []
    while not saved and time.monotonic() < deadline and sweep.poll() is None:
        saved = list((tmp_path / "train" / "multiruns").glob("*/0/checkpoints/last.ckpt"))
        time.sleep(0.02)
    assert saved, "the job saved no last.ckpt"
    run_dir = saved[0].parent.parent
    (job,) = [  # the job's process: the one writing its train.log
        p
        for p in psutil.Process(sweep.pid).children(recursive=True)
        if _writes(p, run_dir / "train.log") and "submitit.core._submit" in p.cmdline()
    ]
    job.send_signal(signal.SIGUSR2)
    _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0 and "Traceback" not in err, err[-2000:]

    log = (run_dir / "train.log").read_text()
    assert "a requeued job: continuing from this run dir's own" in log
    epochs = [int(n) for n in re.findall(r"\[Epoch (\d+)/8\]", log)]
    assert epochs.count(1) == 1 and sorted(set(epochs)) == list(range(1, 9))  # continued, not restarted
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 8 and metrics["global_step"] == 8 * 5  # 5 of the 20 batches an epoch
    sweep_dir = run_dir.parent
    assert (sweep_dir / ".submitit").is_dir()
    rows = json.loads((sweep_dir / "summary.json").read_text())  # the sweep ended as a sweep
    assert [(Path(r["run_dir"]).name, r["best_val_top1"] is not None, "failed" in r) for r in rows] == [
        ("0", True, False)
    ]


def _writes(process: psutil.Process, path: Path) -> bool:
    """True when `process` holds `path` open (a log it writes); False for one that has ended (the failed
    job's process may be a zombie by now)."""
    try:
        return any(Path(f.path) == path for f in process.open_files())
    except psutil.Error:
        return False


def test_ctrl_c_and_a_full_disk_outside_training_are_one_line(capsys, tmp_path: Path) -> None:
    def interrupted(cfg) -> None:
        raise KeyboardInterrupt

    def full(cfg) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "predictions.json"))

    with pytest.raises(SystemExit) as stop:
        run_task(interrupted, None)
    assert stop.value.code == 130 and capsys.readouterr().err == "interrupted: Ctrl-C\n"
    with pytest.raises(SystemExit) as stop:
        run_task(full, None)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'predictions.json'}: No space left on device\n"


def test_help_lists_the_groups_a_user_chooses_from(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    groups = result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "model: alexnet, convnext_base, " in groups and ", regnet_y_400mf, " in groups
    assert "trainer: auto, cpu, ddp, ddp_cpu, gpu" in groups
    assert "base:" not in groups and "hydra" not in groups
