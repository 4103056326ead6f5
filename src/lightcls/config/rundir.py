"""Choose a run's output dir in plain Python before Hydra starts (no resolver creates directories)."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lightcls.config.compose import quote
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

STAMP = "%Y-%m-%d_%H-%M-%S"
#: what a training run writes into its run dir (overwrite=true removes them)
RUN_OUTPUTS = ("checkpoints", "metrics.json", "metrics.csv", "eval", "report.html", "tensorboard")
#: the trackers' own files (logger=csv, wandb, and mlflow's local store in a run dir)
RUN_OUTPUTS += ("csv", "wandb", "mlflow.db", "mlartifacts")
#: the one line that ended a multirun's job, written in its dir (the sweep went on without it)
FAILED_FILE = "failed.txt"


def unique_dir(base: str | Path, stamp: str | None = None) -> Path:
    """Create and return `base/<YYYY-MM-DD_HH-MM-SS>`, adding `_1`, `_2`... when another run holds it."""
    stamp = stamp or datetime.now().strftime(STAMP)
    for n in itertools.count():
        path = Path(base) / (stamp if n == 0 else f"{stamp}_{n}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def resumed_run_dir(ckpt_path: str | None) -> Path | None:
    """The run dir a checkpoint was saved in (`<run>/checkpoints/x.ckpt`), where a resumed run continues."""
    if not ckpt_path:
        return None
    ckpt = Path(str(ckpt_path)).expanduser().resolve()
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None


def run_dir_overrides(cfg: DictConfig, argv: Sequence[str], multirun: bool) -> list[str]:
    """`hydra.run.dir=...` (or `hydra.sweep.dir=...`) for a command about to run: a fresh unique dir under
    `<outputs_root>/<task>/runs|multiruns`, a resumed training run's own dir, or nothing when the command
    line already names one (as Lightning's DDP launcher does for its ranks)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    named = [a.split("=", 1)[1].strip("'\"") for a in argv if a.lstrip("+").startswith(f"{key}=")]
    if named:
        if cfg.task_name == "train" and not multirun:  # before Hydra writes the dir's .hydra/ again
            given = OmegaConf.select(cfg, "ckpt_path", default=None, throw_on_missing=False)
            run_dir = Path(named[-1]).expanduser()
            resume = given or (run_dir / "checkpoints" / "last.ckpt" if requeued() else None)
            check_run_dir(run_dir, resume, bool(cfg.get("overwrite")), remove=False)
        return []
    base = Path(str(cfg.paths.outputs_root)) / str(cfg.task_name)
    if multirun:
        return [f"{key}={quote(unique_dir(base / 'multiruns'))}"]
    resumed = resumed_run_dir(OmegaConf.select(cfg, "ckpt_path", default=None, throw_on_missing=False))
    if cfg.task_name == "train" and resumed is not None:
        return [f"{key}={quote(resumed)}"]
    return [f"{key}={quote(unique_dir(base / 'runs'))}"]


def requeued() -> bool:
    """Whether this process is a cluster job started again (submitit, SLURM requeue): it resumes its dir."""
    return "SUBMITIT_EXECUTOR" in os.environ or int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def run_results(run_dir: Path) -> list[str]:
    """The results of a training run that `run_dir` already holds (checkpoints, metrics)."""
    found = [name for name in ("metrics.json", "metrics.csv") if (run_dir / name).is_file()]
    if any((run_dir / "checkpoints").glob("*.ckpt")):
        found.append("checkpoints/")
    return found


def check_run_dir(run_dir: Path, resume: str | Path | None, overwrite: bool, remove: bool = True) -> None:
    """One run per run dir: a dir holding another run's results is refused in one line, unless this run
    resumes a checkpoint of that dir or `overwrite` says to replace them (removed here when `remove`)."""
    found = run_results(run_dir)
    if not found or _another_rank():  # rank 0 checked before the other ranks started
        return
    if resume and Path(resume).expanduser().resolve().is_relative_to(run_dir.resolve()):
        return
    if not overwrite:
        raise LightclsError(
            f"run dir {run_dir} holds another run's results ({', '.join(found)}); resume that run with "
            f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}, choose another hydra.run.dir, or pass "
            "overwrite=true to replace them"
        )
    if remove:
        log.warning("overwrite=true: removing the earlier run's results from %s", run_dir)
        for name in RUN_OUTPUTS:
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _another_rank() -> bool:
    """Whether this process is a rank other than 0 of a distributed run (set by its launcher)."""
    keys = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return any(int(os.environ.get(key) or 0) > 0 for key in keys if (os.environ.get(key) or "0").isdigit())
