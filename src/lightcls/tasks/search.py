"""The search task: an Optuna study whose trials are training runs of one config, poor ones pruned early.

A small command on Optuna's own API rather than Hydra's Optuna sweeper: that plugin pins optuna<3 and
cannot prune; here each trial is `train()` with optuna-integration's Lightning pruning callback.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from lightcls.config import compose
from lightcls.errors import LightclsError
from lightcls.evaluation.runs import objective_value, print_summary, write_summary
from lightcls.workflows.checks import check_search, check_train, search_space
from lightcls.workflows.runlog import python_run
from lightcls.workflows.training import run_training

log = logging.getLogger(__name__)


def search(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the study `cfg.search` describes; `overrides` (default: the command line's) go to every trial.

    Returns the best trial (value, overrides, run dir, checkpoint) and one row per trial; writes them as
    `best.json`, `summary.csv` and `summary.json` into the run dir.
    """
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    spec = cfg.search
    check_search(cfg)
    base = _train_overrides(overrides)
    for corner in _corners(
        search_space(spec.space)
    ):  # a value no trial could train with fails now, in one line
        check_train(compose("train", [*base, *corner]))
    study_dir = Path(str(cfg.paths.output_dir)).resolve()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its per-trial INFO lines repeat our table
    study = optuna.create_study(
        storage=spec.storage,
        study_name=spec.study_name,
        direction=spec.direction,
        sampler=instantiate(spec.sampler),
        pruner=instantiate(spec.pruner),
        load_if_exists=True,
    )
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    study.optimize(
        lambda trial: _trial(trial, spec, base, study_dir),
        n_trials=int(spec.n_trials),
        timeout=spec.timeout,
        callbacks=[MaxTrialsCallback(int(spec.n_trials), states=done)],
        gc_after_trial=True,
    )
    rows = [_row(t, search_space(spec.space)) for t in study.trials]
    rows.sort(
        key=lambda r: (r["value"] is None, -(r["value"] or 0) if spec.direction == "maximize" else r["value"])
    )
    write_summary(rows, study_dir)
    best = _best(study, spec)
    (study_dir / "best.json").write_text(_json(best), encoding="utf-8")
    counts = {s.name.lower(): sum(t.state == s for t in study.trials) for s in TrialState}
    print_summary(rows, f"lightcls search: {len(rows)} trials of study {study.study_name!r}, best first")
    log.info("best trial: %s", best)
    if best and best.get("run_dir"):
        log.info("the best trial's report.html: lightcls-report %s", best["run_dir"])
    return {"best": best, "trials": rows, "counts": {k: v for k, v in counts.items() if v}}


def _trial(trial: Any, spec: DictConfig, base: list[str], study_dir: Path) -> float:
    """One training run with the sampled values; pruned (optuna.TrialPruned) when the pruner says so."""
    import optuna

    sampled = {key: _suggest(trial, key, entry) for key, entry in search_space(spec.space).items()}
    overrides = [*base, *(f"{key}={value}" for key, value in sampled.items())]
    cfg = compose("train", [*overrides, "report=false"])  # many runs: lightcls-report writes the best's
    run_dir = study_dir / f"trial_{trial.number:03d}"
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    pruning = _pruning_callback(trial, str(spec.monitor))
    log.info("trial %d: %s", trial.number, " ".join(f"{k}={v}" for k, v in sampled.items()))
    with python_run(cfg, overrides, run_dir):
        metrics = run_training(cfg, callbacks=[pruning], group=study_dir)  # one tracker store and group
    if metrics.get("best_ckpt"):
        trial.set_user_attr("best_ckpt", str(run_dir / metrics["best_ckpt"]))
    trial.set_user_attr("epochs", metrics.get("epochs"))
    if pruning.pruned_at is not None:
        raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at + 1}")
    value = objective_value(metrics, str(spec.objective))
    if metrics.get("task") == "multilabel":  # a top-1 objective reads the trial's mAP
        trial.set_user_attr("objective", str(spec.objective).replace("top1", "map"))
    if value is None:
        raise LightclsError(
            f"search.objective={spec.objective}: trial {trial.number}'s metrics.json has no value"
        )
    return float(value)


def _pruning_callback(trial: Any, monitor: str) -> Any:
    """optuna-integration's Lightning pruning callback, stopping the fit instead of raising out of it, so a
    pruned trial still ends as a run (checkpoints, metrics.json) before the search marks it pruned."""
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    class StopWhenPruned(PyTorchLightningPruningCallback):
        pruned_at: int | None = None

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            try:
                super().on_validation_end(trainer, pl_module)
            except optuna.TrialPruned:
                self.pruned_at = pl_module.current_epoch
                trainer.should_stop = True

    return StopWhenPruned(trial, monitor=monitor)


def _suggest(trial: Any, key: str, entry: dict[str, Any]) -> Any:
    """`trial.suggest_<kind>(key, ...)` with the entry's arguments."""
    args = dict(entry)
    kind = args.pop("suggest")
    return getattr(trial, f"suggest_{kind}")(key, **args)


def _corners(space: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Override sets that visit both ends of every range and every choice (one key varied at a time)."""
    sets = []
    for key, entry in space.items():
        values = entry["choices"] if entry["suggest"] == "categorical" else [entry["low"], entry["high"]]
        sets += [[f"{key}={value}"] for value in values]
    return sets


def _train_overrides(overrides: Sequence[str] | None) -> list[str]:
    """The command line's overrides a trial takes: all but the search's own."""
    if overrides is None:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return [o for o in overrides if not o.lstrip("+~").startswith(("search=", "search."))]


def _row(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A summary row: the trial's number, state, sampled values, objective, epochs, where it ran."""
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        **{key: trial.params.get(key) for key in space},
        "value": trial.value,
        "epochs": trial.user_attrs.get("epochs"),
        "worker": trial.user_attrs.get("worker"),
        "run_dir": trial.user_attrs.get("run_dir", ""),
        "best_ckpt": trial.user_attrs.get("best_ckpt"),
    }


def _best(study: Any, spec: DictConfig) -> dict[str, Any] | None:
    """The best finished trial: its value, the overrides that reproduce it, its run dir and checkpoint."""
    try:
        trial = study.best_trial
    except ValueError:  # no trial finished
        return None
    return {
        "trial": trial.number,
        trial.user_attrs.get("objective", str(spec.objective)): trial.value,
        "overrides": [f"{key}={value}" for key, value in trial.params.items()],
        "run_dir": trial.user_attrs.get("run_dir"),
        "best_ckpt": trial.user_attrs.get("best_ckpt"),
    }


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2) + "\n"
