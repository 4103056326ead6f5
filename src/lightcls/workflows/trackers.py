"""Experiment trackers: Lightning's own loggers from `cfg.logger` (tensorboard, csv, mlflow, wandb), given
what the config leaves to the run (MLflow's store, tags and params, W&B's offline mode, run names, a sweep's
group), checked before any run dir, and handed the run's results at the end."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, MLFlowLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lightcls.errors import LightclsError, one_line

try:
    import fcntl
except ImportError:  # Windows: no lock; a parallel sweep there gives MLflow a server or a made store
    fcntl = None

log = logging.getLogger(__name__)

#: trackers whose package is an extra (`pip install 'lightcls[track]'`)
PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}
#: MLflow's tracking URI schemes when its own registry cannot be read (plugins add more)
SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "uc")
#: schemes whose URI names a host (a server or a database server)
HOSTED = ("http", "https", "postgresql", "mysql", "mssql")
URI_KEY = "logger.mlflow.tracking_uri"


def check_loggers(cfg: DictConfig) -> None:
    """Each chosen tracker's package is installed, MLflow's tracking URI is one it can use, and W&B is told
    to go online only with a login."""
    chosen = [str(name) for name, node in (cfg.get("logger") or {}).items() if node is not None]
    for name in chosen:
        package = PACKAGES.get(name)
        if package and not installed(package):
            raise LightclsError(f"logger={name} needs {package}: pip install 'lightcls[track]'")
    uri = OmegaConf.select(cfg, URI_KEY, default=None) if "mlflow" in chosen else None
    if uri is not None:
        check_tracking_uri(str(uri))
    if "wandb" in chosen:
        _check_wandb_mode(cfg.logger.wandb.get("offline"))


def _check_wandb_mode(offline: Any) -> None:
    """`logger.wandb.offline`: true, false (online: needs a login) or null (online when logged in)."""
    key = "logger.wandb.offline"
    if offline is not None and not isinstance(offline, bool):
        raise LightclsError(f"{key}={offline}: give true, false or null (offline unless logged in)")
    if offline is False and not _wandb_decides():
        raise LightclsError(
            f"{key}=false but W&B has no login here (`wandb login` or WANDB_API_KEY); "
            "leave it null to run offline and `wandb sync` later"
        )


def installed(package: str) -> bool:
    """Whether `package` can be imported (it is not imported here)."""
    return importlib.util.find_spec(package) is not None


def check_tracking_uri(uri: str) -> None:
    """A LightclsError naming `logger.mlflow.tracking_uri` unless MLflow knows its scheme and it names what
    that scheme needs (a host, a database file)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise LightclsError(f"{URI_KEY}={uri}: the port is not a number from 0 to 65535") from None
    scheme = parts.scheme.split("+")[0]  # postgresql+psycopg2: the dialect's driver
    if scheme not in _schemes():
        known = "sqlite:///PATH.db, http(s)://HOST:PORT, postgresql://USER@HOST/DB"
        raise LightclsError(f"{URI_KEY}={uri}: MLflow knows no {scheme!r} store; give {known} or null")
    if scheme in HOSTED and not parts.hostname:
        raise LightclsError(f"{URI_KEY}={uri}: no host; give {scheme}://HOST{'' if port else '[:PORT]'}/...")
    if scheme == "sqlite":
        _check_sqlite(uri)
    if scheme in ("http", "https"):
        _check_server(uri)


def _check_server(uri: str, timeout: float = 5.0) -> None:
    """A tracking server answers (any HTTP status will do): MLflow retries an unreachable one for minutes."""
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise LightclsError(
            f"{URI_KEY}={uri}: no tracking server answers there ({one_line(str(reason))})"
        ) from None


def _check_sqlite(uri: str) -> None:
    """sqlite:///relative.db or sqlite:////absolute.db, in a folder that exists."""
    db = sqlite_file(uri)
    if db is None or not db.name:
        raise LightclsError(
            f"{URI_KEY}={uri}: give sqlite:///RELATIVE/PATH.db or sqlite:////ABSOLUTE/PATH.db"
        )
    if not db.expanduser().resolve().parent.is_dir():
        raise LightclsError(f"{URI_KEY}={uri}: no folder {db.parent}")


def _schemes() -> tuple[str, ...]:
    """The tracking URI schemes the installed MLflow knows, its plugins' included."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry
    except ImportError:
        return SCHEMES
    return tuple(getattr(_tracking_store_registry, "_registry", None) or SCHEMES)


def build_loggers(cfg: DictConfig, group: Path | None = None) -> list[Logger]:
    """The config's loggers (logger.NAME=null turns one off). MLflow and W&B runs are named after the run dir
    and, in a sweep or search (`group`: its dir; a multirun's by default), share its store and group."""
    run_dir = Path(str(cfg.paths.output_dir)).resolve()
    group = group.resolve() if group is not None else sweep_dir()
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        args: dict[str, Any] = {}
        if name == "mlflow":
            args = mlflow_args(cfg, node, run_dir, group)
            if rank_zero_only.rank == 0:  # made here, not by Lightning: with its artifact location, quietly
                _experiment(args["tracking_uri"], str(node.experiment_name), args["artifact_location"])
        elif name == "wandb":
            args = wandb_args(cfg, node, run_dir, group)
        loggers.append(instantiate(node, **args))
    return loggers


def sweep_dir() -> Path | None:
    """A multirun job's sweep dir (its jobs share one store and group); None outside a multirun."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(str(HydraConfig.get().sweep.dir)).resolve()


def run_name(run_dir: Path, group: Path | None) -> str:
    """The run dir's name; in a sweep or search, `<its dir name>/<the run dir's name>`."""
    if group is not None and run_dir.is_relative_to(group) and run_dir != group:
        return run_dir.relative_to(group.parent).as_posix()
    return run_dir.name


def mlflow_args(cfg: DictConfig, node: DictConfig, run_dir: Path, group: Path | None) -> dict[str, Any]:
    """MLFlowLogger's store (by default a sqlite file in the run's or its group's dir; its artifacts beside a
    sqlite store), run name and tags."""
    home = group or run_dir
    uri = str(node.get("tracking_uri") or _sqlite_uri(home / "mlflow.db"))
    artifacts = node.get("artifact_location") or _beside_sqlite(uri)
    tags = {**run_tags(cfg, group), **(OmegaConf.to_container(node.tags) if node.get("tags") else {})}
    return {
        "tracking_uri": uri,
        "run_name": node.get("run_name") or run_name(run_dir, group),
        "artifact_location": artifacts,
        "tags": tags,
    }


def _sqlite_uri(db: Path) -> str:
    """The sqlite URI of a database file (MLflow's own spelling of it)."""
    from mlflow.utils.file_utils import path_to_local_sqlite_uri

    db.parent.mkdir(parents=True, exist_ok=True)
    return path_to_local_sqlite_uri(str(db))


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite URI (sqlite:///relative.db, sqlite:////absolute.db); None for others."""
    parts = urlsplit(uri)
    if parts.scheme != "sqlite" or not parts.path.startswith("/"):
        return None
    return Path(unquote(parts.path[1:])).expanduser()


def _beside_sqlite(uri: str) -> str | None:
    """`<db dir>/mlartifacts` for a sqlite store; None for others (a server chooses)."""
    db = sqlite_file(uri)
    return str(db.resolve().parent / "mlartifacts") if db is not None else None


@contextmanager
def _one_at_a_time(uri: str) -> Iterator[None]:
    """Processes starting together (a parallel sweep's jobs) make a new sqlite store one after another: at
    once, each would create its tables (duplicate column errors). The lock is the store's folder itself."""
    db = sqlite_file(uri)
    if db is None or fcntl is None:
        yield
        return
    folder = os.open(db.resolve().parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


def _experiment(uri: str, name: str, artifacts: str | None) -> None:
    """The experiment `name` in the store at `uri`, made when missing (a new store's tables made quietly)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    store_log = logging.getLogger("mlflow.store.db.utils")
    level = store_log.level
    store_log.setLevel(logging.WARNING)  # "Creating initial MLflow database tables...": every new run dir
    try:
        with _one_at_a_time(uri):
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(name)
            if found is None or found.lifecycle_stage == "deleted":
                client.create_experiment(name, artifact_location=artifacts)
    except MlflowException as err:  # a server refusing (no access), a database it cannot use
        raise LightclsError(f"{URI_KEY}={uri}: {one_line(err.message)}") from None
    finally:
        store_log.setLevel(level)


def run_tags(cfg: DictConfig, group: Path | None) -> dict[str, str]:
    """A run's tags: model, data set, task, its sweep or search (`sweep`), and the git commit it ran from."""
    tags = {"model": str(cfg.model.name), "data": str(cfg.data.name), "task": str(cfg.task_name)}
    if group is not None:
        tags["sweep"] = group.name
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit  # where MLflow's UI shows it
    return tags


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD's commit of the git repository the command runs in; None outside one, or without git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip() if done.returncode == 0 else ""
    return commit or None


def wandb_args(cfg: DictConfig, node: DictConfig, run_dir: Path, group: Path | None) -> dict[str, Any]:
    """WandbLogger's run name, group and mode: offline unless told, or logged in (no network needed)."""
    offline = node.get("offline")
    args: dict[str, Any] = {
        "offline": False,  # Lightning's offline sets WANDB_MODE for the whole process: `mode` is this run's
        "name": node.get("name") or run_name(run_dir, group),
        "group": node.get("group") or (group.name if group is not None else None),
        "tags": [str(cfg.model.name), str(cfg.data.name), *(node.get("tags") or [])],
    }
    if offline or (offline is None and not _wandb_decides()):
        args["mode"] = "offline"
        log.info("logger=wandb: offline in %s (`wandb sync` uploads it later)", run_dir / "wandb")
    return args


def _wandb_decides() -> bool:
    """Whether W&B's own settings choose the mode: WANDB_MODE is set, or the user is logged in."""
    if os.environ.get("WANDB_MODE"):
        return True
    import wandb

    try:
        return bool(getattr(wandb.api, "api_key", None))
    except Exception:  # noqa: BLE001 - an unreadable login is no login
        return False


@rank_zero_only
def start_trackers(loggers: list[Logger], cfg: DictConfig) -> None:
    """The composed config to the trackers: MLflow's params (dotted keys), W&B's config."""
    config = _resolved(cfg)
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            logger.log_hyperparams(flat(config, private=True))
        elif isinstance(logger, WandbLogger):
            logger.experiment.config.update(config, allow_val_change=True)


@rank_zero_only
def finish_trackers(loggers: list[Logger], run_dir: Path, metrics: dict[str, Any]) -> None:
    """The run's results to the trackers: the numbers of metrics.json (MLflow's metrics, W&B's summary);
    MLflow's artifacts: the best (else last) checkpoint, metrics.json and report.html. W&B's run ends."""
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            _mlflow_results(logger, run_dir, metrics, numbers)
        elif isinstance(logger, WandbLogger):
            logger.experiment.summary.update(numbers)
            logger.experiment.finish()


def _mlflow_results(
    logger: MLFlowLogger, run_dir: Path, metrics: dict[str, Any], numbers: dict[str, float]
) -> None:
    """The run's numbers and files to its MLflow run, which ends (again) as finished."""
    client, run_id = logger.experiment, logger.run_id
    logger.log_metrics(numbers, step=int(metrics.get("global_step") or 0))
    ckpt = metrics.get("best_ckpt") or metrics.get("last_ckpt")
    if ckpt and (run_dir / ckpt).is_file():
        client.log_artifact(run_id, str(run_dir / ckpt), "checkpoints")
    for name in ("metrics.json", "report.html"):
        if (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
    logger.finalize("success")


@contextmanager
def tracked() -> Iterator[None]:
    """Around a run: a W&B run a failure left open is ended, and MLflow's process-wide tracking URI (which
    Lightning's MLFlowLogger sets) is put back as it was, so the next run in this process picks its own."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    except BaseException:
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            wandb.finish(exit_code=1)
        raise
    finally:
        mlflow = sys.modules.get("mlflow")
        if mlflow is not None and os.environ.get("MLFLOW_TRACKING_URI") != before:
            mlflow.set_tracking_uri(before)


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data, interpolations resolved where they can be."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation only Hydra's own run resolves: keep it as written
        return OmegaConf.to_container(cfg, resolve=False)


def flat(node: Any, prefix: str = "", private: bool = False) -> dict[str, Any]:
    """A nested dict as dotted keys (lists kept whole); keys starting with `_` (Hydra's `_target_`) only when
    `private`."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    found: dict[str, Any] = {}
    for key, value in node.items():
        if private or not str(key).startswith("_"):
            found.update(flat(value, f"{prefix}{key}.", private))
    return found
