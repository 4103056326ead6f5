"""Trackers beside TensorBoard (MLflow, W&B, CSV): one 2-job sweep of the real command line, read back as a
user would (MlflowClient, the offline W&B run, the CSV file); offline throughout; their mistakes one line
before any run dir."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import TINY, assert_refused, compose_train, free_port, refused_in_process, start_cli
from lightcls.workflows import trackers

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*")  # MLflow's own SQLAlchemy use
#: the sweep's jobs: report.html in job 0 (report=true), none in job 1 (report=false)
JOBS = 2
LOGGERS = "logger=[tensorboard,mlflow,csv,wandb]"


def _offline(mp: pytest.MonkeyPatch, home: Path) -> None:
    """Nothing reaches a server: no MLflow telemetry or tracking URI, no W&B login (so it must pick offline
    itself), W&B's own files under `home`."""
    for key in ("MLFLOW_TRACKING_URI", "WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        mp.delenv(key, raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("DO_NOT_TRACK", "true")
    mp.setenv("NETRC", str(home / "no-netrc"))
    mp.setenv("WANDB_SILENT", "true")
    for key, name in (("WANDB_DIR", "dir"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache")):
        mp.setenv(key, str(home / name))
    mp.setenv("WANDB_DATA_DIR", str(home / "data"))


def _git_repo(folder: Path) -> str | None:
    """`folder` made a git repository with one commit; its commit (None without git)."""
    if shutil.which("git") is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(folder)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "start"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def sweep(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str | None]:
    """`python train.py -m ... logger=[tensorboard,mlflow,csv,wandb] report=true,false seed=0` started in a
    git repository, W&B not logged in: its sweep dir and the repository's commit."""
    base = tmp_path_factory.mktemp("trackers")
    work = base / "work"
    commit = _git_repo(work)
    work.mkdir(exist_ok=True)
    args = [f"data.root={digits_root}", "trainer=cpu", TINY, "trainer.max_epochs=2", LOGGERS]
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp, base / "home")
        process = start_cli(["-m", *args, "report=true,false", "seed=0"], work)
        out, err = process.communicate(timeout=240)  # the W&B service must end with the command, too
    assert process.returncode == 0, (out + err)[-3000:]
    (sweep_dir,) = (work / "outputs" / "train" / "multiruns").iterdir()
    return sweep_dir, commit


@pytest.mark.slow
def test_one_sweep_read_back_by_each_tracker(sweep, monkeypatch, tmp_path: Path) -> None:
    """The sweep runs once (an xdist worker of its own would run it again): MLflow's runs, their params,
    metrics and artifacts, then W&B's offline runs and the CSV files."""
    check_one_mlflow_run_per_job_in_the_sweep_dirs_store_grouped(sweep, monkeypatch)
    check_mlflow_reads_back_params_epoch_metrics_and_artifacts(sweep, monkeypatch, tmp_path)
    check_wandb_runs_offline_in_each_run_dir_and_csv_writes_its_file(sweep)


def _client(sweep_dir: Path):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")


def _runs(sweep_dir: Path) -> dict[str, object]:
    """The store's runs by name."""
    client = _client(sweep_dir)
    experiment = client.get_experiment_by_name("digits")
    return {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}


def check_one_mlflow_run_per_job_in_the_sweep_dirs_store_grouped(sweep, monkeypatch) -> None:
    sweep_dir, commit = sweep
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    runs = _runs(sweep_dir)
    assert sorted(runs) == [f"{sweep_dir.name}/{job}" for job in range(JOBS)]
    assert not list(sweep_dir.glob("*/mlflow.db"))  # one store, in the sweep dir
    for run in runs.values():
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        expected = {"sweep": sweep_dir.name, "model": "lenet", "data": "digits", "task": "train"}
        assert {key: tags[key] for key in expected} == expected
        if commit:
            assert tags["git_commit"] == tags["mlflow.source.git.commit"] == commit
    artifacts = _client(sweep_dir).get_experiment_by_name("digits").artifact_location
    assert Path(artifacts) == sweep_dir / "mlartifacts"
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))  # the artifacts' copies are no runs
    assert sorted(Path(row["run_dir"]).name for row in rows) == [str(job) for job in range(JOBS)]


def check_mlflow_reads_back_params_epoch_metrics_and_artifacts(sweep, monkeypatch, tmp_path: Path) -> None:
    sweep_dir, _ = sweep
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    client, run_dir = _client(sweep_dir), sweep_dir / "0"
    run = _runs(sweep_dir)[f"{sweep_dir.name}/0"]
    params, run_id = run.data.params, run.info.run_id
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert params["model.name"] == "lenet" and params["optimizer.lr"] == str(config.optimizer.lr)
    assert params["optimizer._target_"] == "torch.optim.SGD" and params["trainer.max_epochs"] == "2"
    assert params["seed"] == "0" and params["report"] == "True"

    epochs = list(csv.DictReader((run_dir / "metrics.csv").open()))  # lightcls' own record, a row an epoch
    history = client.get_metric_history(run_id, "val/top1")
    assert [round(m.value, 6) for m in history] == [round(float(row["val_top1"]), 6) for row in epochs]
    assert len(history) == 2 and history[0].step < history[1].step
    assert len(client.get_metric_history(run_id, "train/loss_epoch")) == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.metrics["best_val_top1"] == pytest.approx(metrics["best_val_top1"])
    assert run.data.metrics["test/top1"] == pytest.approx(metrics["test_top1"])

    best = Path(metrics["best_ckpt"])
    names = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "checkpoints")
    }
    assert names >= {"metrics.json", "report.html", f"checkpoints/{best.name}"}
    local = Path(client.download_artifacts(run_id, "metrics.json", str(tmp_path)))
    assert json.loads(local.read_text()) == metrics  # the final metrics.json
    copy = Path(client.download_artifacts(run_id, f"checkpoints/{best.name}", str(tmp_path)))
    assert copy.read_bytes() == (run_dir / best).read_bytes()
    unreported = _runs(sweep_dir)[f"{sweep_dir.name}/1"].info.run_id  # report=false: no page to log
    assert "report.html" not in {a.path for a in client.list_artifacts(unreported)}


def _wandb_records(run_file: Path) -> dict[str, list]:
    """An offline W&B run's records by kind, read as `wandb sync` reads them (wandb's own reader)."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal.datastore import DataStore

    store, records = DataStore(), {}
    store.open_for_scan(str(run_file))
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        records.setdefault(record.WhichOneof("record_type"), []).append(record)
    return records


def check_wandb_runs_offline_in_each_run_dir_and_csv_writes_its_file(sweep) -> None:
    sweep_dir, _ = sweep
    for job in range(JOBS):
        run_dir = sweep_dir / str(job)
        (offline,) = (run_dir / "wandb").glob("offline-run-*")  # not logged in: offline, `wandb sync` later
        records = _wandb_records(next(offline.glob("run-*.wandb")))
        (run,) = [r.run for r in records["run"]]
        assert (run.run_group, run.display_name, run.project) == (
            sweep_dir.name,
            f"{sweep_dir.name}/{job}",
            "lightcls",
        )
        summary = {
            i.key: json.loads(i.value_json) for r in records["summary"] for i in r.summary.update if i.key
        }
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert summary["best_val_top1"] == pytest.approx(metrics["best_val_top1"])
        assert [r.exit.exit_code for r in records["exit"]] == [0]  # finished by the run, not at exit
        rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
        assert len([r for r in rows if r.get("val/top1")]) == 2


def test_a_search_trial_joins_its_study_store_and_group(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    study, trial = tmp_path / "2030-01-01_00-00-00", tmp_path / "2030-01-01_00-00-00" / "trial_003"
    cfg = compose_train(["logger=mlflow"], trial)
    args = trackers.mlflow_args(cfg, cfg.logger.mlflow, trial, study)
    assert args["tracking_uri"] == f"sqlite:///{study / 'mlflow.db'}"
    assert args["artifact_location"] == str(study / "mlartifacts")
    assert args["run_name"] == "2030-01-01_00-00-00/trial_003" and args["tags"]["sweep"] == study.name
    single = trackers.mlflow_args(cfg, cfg.logger.mlflow, trial, None)
    assert single["tracking_uri"] == f"sqlite:///{trial / 'mlflow.db'}" and single["run_name"] == "trial_003"
    assert "sweep" not in single["tags"]


def test_search_hands_each_trial_its_study_dir(digits_root: Path, tmp_path: Path, monkeypatch) -> None:
    from helpers import compose_task
    from lightcls.tasks import search as search_task

    groups = []

    def fake_training(cfg, callbacks=(), group=None):
        groups.append(group)
        return {"best_val_top1": 0.5, "epochs": 1}

    monkeypatch.setattr(search_task, "run_training", fake_training)
    overrides = [f"data.root={digits_root}", "search.n_trials=2", "~search.space.data", "trainer=cpu"]
    search_task.search(compose_task("search", overrides, tmp_path), overrides)
    assert groups == [tmp_path.resolve()] * 2


def test_a_new_sqlite_store_is_made_by_one_process_at_a_time(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    with trackers._one_at_a_time(f"sqlite:///{tmp_path / 'mlflow.db'}"):  # a parallel sweep's other job:
        other = os.open(tmp_path, os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(other)


def test_a_run_leaves_mlflows_process_wide_tracking_uri_as_it_found_it(monkeypatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # then gone: monkeypatch puts back what was before
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with trackers.tracked():
        mlflow.set_tracking_uri("sqlite:///elsewhere.db")  # what Lightning's MLFlowLogger does
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_tracker_mistakes_are_one_line_before_any_run_dir(
    digits_root: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = f"data.root={digits_root}"
    uri = "logger.mlflow.tracking_uri"

    def refused(args: list[str], message: str) -> None:
        assert_refused(refused_in_process("train", [data, *args], capsys), message)

    refused(
        ["logger=[tensorboard,mlflw]"],
        "unknown logger 'mlflw' (did you mean mlflow?); choose one of: csv, mlflow, none, tensorboard, wandb",
    )
    refused(
        ["logger=mlflow", f"{uri}=localhost:5000"],
        f"{uri}=localhost:5000: MLflow knows no 'localhost' store; give sqlite:///PATH.db, "
        "http(s)://HOST:PORT, postgresql://USER@HOST/DB or null",
    )
    refused(["logger=mlflow", f"{uri}=http://:5000"], f"{uri}=http://:5000: no host; give http://HOST/...")
    refused(
        ["logger=mlflow", f"{uri}=http://host:port"],
        f"{uri}=http://host:port: the port is not a number from 0 to 65535",
    )
    refused(
        ["logger=mlflow", f"{uri}=sqlite:////no/such/folder/mlflow.db"],
        f"{uri}=sqlite:////no/such/folder/mlflow.db: no folder /no/such/folder",
    )
    port = free_port()
    refused(
        ["logger=mlflow", f"{uri}=http://127.0.0.1:{port}"],
        f"{uri}=http://127.0.0.1:{port}: no tracking server answers there ([Errno 111] Connection refused)",
    )
    _offline(monkeypatch, tmp_path / "home")  # no W&B login
    refused(
        ["logger=wandb", "logger.wandb.offline=false"],
        "logger.wandb.offline=false but W&B has no login here (`wandb login` or WANDB_API_KEY); leave it "
        "null to run offline and `wandb sync` later",
    )
    refused(
        ["logger=wandb", "logger.wandb.offline=maybe"],
        "logger.wandb.offline=maybe: give true, false or null (offline unless logged in)",
    )
    monkeypatch.setattr(trackers, "installed", lambda package: package != "wandb")
    refused(["logger=[tensorboard,wandb]"], "logger=wandb needs wandb: pip install 'lightcls[track]'")
    assert not (tmp_path / "outputs").exists()
