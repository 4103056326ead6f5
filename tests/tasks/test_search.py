"""lightcls-search: an Optuna study of training runs, pruned early, shared by processes through storage."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import optuna
import pytest
import yaml

from helpers import TINY, assert_refused, compose_task, one_line_error, refused_in_process, start_entry
from lightcls.ckpt import best_of_sweep
from lightcls.tasks.search import search


def test_a_search_prunes_poor_trials_and_summarizes_the_study(digits_root: Path, tmp_path: Path) -> None:
    overrides = [
        f"data.root={digits_root}",
        TINY,
        "trainer.max_epochs=2",
        "search.space.optimizer.lr.low=1e-6",
        "search.n_trials=5",  # the median pruner starts after 2
    ]
    result = search(compose_task("search", overrides, tmp_path), overrides)
    assert result["counts"]["complete"] + result["counts"]["pruned"] == 5
    assert result["counts"]["pruned"] >= 1

    rows = json.loads((tmp_path / "summary.json").read_text())
    assert len(rows) == 5
    values = [r["value"] for r in rows if r["state"] == "complete"]
    assert values == sorted(values, reverse=True)  # best first
    for row in rows:
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())  # every trial is a run
        given = yaml.safe_load((Path(row["run_dir"]) / ".hydra" / "overrides.yaml").read_text())
        assert (
            f"optimizer.lr={row['optimizer.lr']}" in given
            and f"data.batch_size={row['data.batch_size']}" in given
        )
        if row["state"] == "complete":
            assert row["value"] == metrics["best_val_top1"] and metrics["epochs"] == 2
        else:  # stopped by the pruner before its last epoch
            assert row["state"] == "pruned" and metrics["epochs"] < 2

    best = json.loads((tmp_path / "best.json").read_text())
    assert best["best_val_top1"] == values[0] == rows[0]["value"]
    assert best_of_sweep(tmp_path) == Path(best["best_ckpt"])  # ckpt_path=<search dir>: its best trial


def test_search_mistakes_are_one_line_before_any_trial(tmp_path: Path, capsys) -> None:
    args = ["search.space.optimizer.lr=0.1", f"paths.outputs_root={tmp_path}/outputs"]
    result = refused_in_process("search", args, capsys)
    assert_refused(
        result,
        "search.space.optimizer.lr: give suggest: float|int|categorical with its arguments "
        "(low, high[, log, step]; or choices)",
    )
    cfg = compose_task("search", ["search.space.optimizer.lr.high=-1", TINY], tmp_path)
    assert one_line_error(search, cfg, []) == (
        "search.space.optimizer.lr: `low <= high` must hold, but got (low=0.001, high=-1)."
    )
    ends = ["search.space.optimizer.lr.low=-1", "search.space.optimizer.lr.log=false", TINY]
    cfg = compose_task("search", ends, tmp_path)  # a range Optuna takes, with an end no trial could train
    assert one_line_error(search, cfg, []) == "optimizer.lr=-1: Invalid learning rate: -1"
    cfg = compose_task("search", ["search.space.data.batch_size.choices=[]", TINY], tmp_path)
    assert one_line_error(search, cfg, []) == (
        "search.space.data.batch_size: The `choices` must contain one or more elements."
    )
    assert not list(tmp_path.rglob("trial_*"))


@pytest.mark.slow
def test_two_processes_share_one_study_through_sqlite(digits_root: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = [f"data.root={digits_root}", TINY, f"search.storage={storage}"]  # trials of one tiny epoch
    # 2 trials for the study: each process runs one at least (the limit is checked after a trial), so the
    # other process, which creates the study, runs one or both, and this one, which joins it, runs one
    args += ["search.study_name=shared", "search.n_trials=2"]
    (tmp_path / "b").mkdir()
    other = start_entry("search", args, tmp_path / "b")  # another process (on another machine, alike)
    for _ in range(900):  # it creates the study; this process joins it
        if (tmp_path / "study.db").is_file() or other.poll() is not None:
            break
        time.sleep(0.1)
    search(compose_task("search", args, tmp_path / "a"), args)
    _, err = other.communicate(timeout=600)
    assert other.returncode == 0, err[-2000:]

    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 2
    workers = {t.user_attrs["worker"].split(":")[1] for t in finished}
    assert workers == {str(os.getpid()), str(other.pid)}  # both processes ran trials of the one study
    folders = {Path(t.user_attrs["run_dir"]).relative_to(tmp_path).parts[0] for t in finished}
    assert folders == {"a", "b"}
