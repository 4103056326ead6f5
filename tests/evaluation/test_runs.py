"""Comparing runs: the overrides that differ, metrics, best first; `lightcls-runs` on the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from helpers import one_line_error
from lightcls.cli.runs import main
from lightcls.evaluation.runs import find_runs, summarize, write_summary


def _run(folder: Path, overrides: list[str], best: float | None, seconds: float) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    metrics = {
        "best_val_top1": best,
        "test_top1": best,
        "epochs": 2,
        "train_seconds": seconds,
        "best_ckpt": "checkpoints/best.ckpt" if best else None,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_a_sweep_is_summarized_best_first(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    _run(sweep / "0", ["optimizer.lr=0.1", "data.batch_size=16", f"paths.outputs_root={tmp_path}"], 0.80, 3.0)
    _run(
        sweep / "1", ["optimizer.lr=0.01", "data.batch_size=16", f"paths.outputs_root={tmp_path}"], 0.95, 2.0
    )
    _run(
        sweep / "2", ["optimizer.lr=0.001", "data.batch_size=16", f"paths.outputs_root={tmp_path}"], None, 1.0
    )
    rows = summarize(find_runs([sweep]))
    assert [r["optimizer.lr"] for r in rows] == ["0.01", "0.1", "0.001"]  # no result last
    assert "data.batch_size" not in rows[0] and "paths.outputs_root" not in rows[0]  # the same in every job
    assert rows[0]["best_ckpt"] == str(sweep / "1" / "checkpoints" / "best.ckpt")
    as_csv, _ = write_summary(rows, sweep)
    table = list(csv.DictReader(as_csv.open()))
    assert [r["best_val_top1"] for r in table] == ["0.95", "0.8", ""]
    main([str(sweep), "--objective", "train_seconds"])
    out = capsys.readouterr().out
    assert out.index("0.1 ") < out.index("0.01 ") < out.index("0.001 ")  # by the objective, highest first


def test_no_runs_is_one_line(tmp_path: Path, capsys) -> None:
    assert one_line_error(find_runs, [tmp_path]).startswith("no run (a folder with metrics.json) under")
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "missing")])
    assert (
        stop.value.code == 2 and capsys.readouterr().err == f"error: {tmp_path / 'missing'}: no such folder\n"
    )


def test_a_truncated_metrics_json_is_one_line(tmp_path: Path, capsys) -> None:
    from lightcls.workflows.page import build_report

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"best_val_top1": 0.9')
    with pytest.raises(SystemExit) as stop:
        main([str(run)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(f"error: {run / 'metrics.json'}: cannot be read (")
    assert one_line_error(build_report, run).startswith(f"{run / 'metrics.json'}: cannot be read (")
