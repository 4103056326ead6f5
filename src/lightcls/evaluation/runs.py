"""Compare runs: one row per run dir (the overrides that differ, its metrics), best first."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from lightcls.config.rundir import FAILED_FILE
from lightcls.errors import LightclsError
from lightcls.files import read_json, write_json

#: metrics.json keys a summary row keeps, in this order (after the overrides)
METRICS = (
    "best_val_top1",
    "final_val_top1",
    "test_top1",
    "best_epoch",
    "epochs",
    "train_seconds",
    "train_images_per_second",
)
#: a multi-label run's keys in their place
MULTILABEL_METRICS = tuple(k.replace("top1", "map") for k in METRICS)
#: overrides that only say where a run writes or reads: never what differs between jobs
_PLUMBING = ("paths.", "hydra.", "data.root")
#: folders whose metrics.json is a copy, not a run (a local MLflow store's artifacts: logger=mlflow)
_COPIES = ("mlartifacts",)


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run dirs (holding metrics.json, or the failure of a sweep's job) among `paths`: each a run dir, or a
    folder searched below it."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if _ended(path):
            runs.append(path)
        elif path.is_dir():
            found = {p.parent for name in ("metrics.json", FAILED_FILE) for p in path.rglob(name)}
            runs += sorted(p for p in found if not set(p.relative_to(path).parts) & set(_COPIES))
        else:
            raise LightclsError(f"{path}: no such folder")
    if not runs:
        raise LightclsError(f"no run (a folder with metrics.json) under {', '.join(map(str, paths))}")
    return runs


def summarize(runs: Sequence[Path], objective: str = "best_val_top1") -> list[dict[str, Any]]:
    """One row per run: the overrides whose values differ between runs, then METRICS, the run dir and best
    checkpoint; sorted by `objective`, best first (runs without it last); multi-label runs show and sort by
    their mAP keys in top-1's place."""
    overrides = [_overrides(run) for run in runs]
    keys = sorted({k for o in overrides for k in o})
    differ = [k for k in keys if len({o.get(k) for o in overrides}) > 1 and not k.startswith(_PLUMBING)]
    rows, read = [], []
    for run in runs:
        failed = run / FAILED_FILE
        if failed.is_file() and not (run / "metrics.json").is_file():
            read.append({"failed": failed.read_text(encoding="utf-8").strip()})
        else:
            read.append(
                read_json(run / "metrics.json", "a run's results: train it again or remove the folder")
            )
    multilabel = any(m.get("task") == "multilabel" for m in read)
    shown = MULTILABEL_METRICS if multilabel else METRICS
    for run, given, metrics in zip(runs, overrides, read, strict=True):
        best = metrics.get("best_ckpt")
        rows.append(
            {
                **{k: given.get(k) for k in differ},
                **{k: metrics.get(k) for k in shown},
                "run_dir": str(run),
                "best_ckpt": str(run / best) if best else None,
                **({"failed": metrics["failed"]} if "failed" in metrics else {}),
            }
        )
    key = objective if not multilabel else objective.replace("top1", "map")
    return sorted(rows, key=lambda r: (r.get(key) is None, -(r.get(key) or 0.0)))


def objective_value(metrics: dict[str, Any], objective: str = "best_val_top1") -> Any:
    """`metrics[objective]`; for a multi-label run asked for a top-1 key, its mAP one (best_val_map)."""
    if objective not in metrics and metrics.get("task") == "multilabel":
        return metrics.get(objective.replace("top1", "map"))
    return metrics.get(objective)


def _ended(path: Path) -> bool:
    return (path / "metrics.json").is_file() or (path / FAILED_FILE).is_file()


def write_summary(rows: list[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    """`summary.csv` and `summary.json` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    as_json, as_csv = folder / "summary.json", folder / "summary.csv"
    write_json(as_json, rows)
    with as_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return as_csv, as_json


def print_summary(rows: list[dict[str, Any]], title: str) -> None:
    """The rows as a table, best first."""
    table = Table(title=title)
    columns = [c for c in (rows[0] if rows else {}) if c not in ("run_dir", "best_ckpt", "worker", "failed")]
    for column in (*columns, "run"):
        justify = "left" if column == "run" or "." in column else "right"
        header = column if "." in column else column.replace("_", " ")  # wraps at words when narrow
        table.add_column(header, justify=justify, overflow="fold")  # a narrow terminal wraps, never cuts
    for row in rows:
        cells = [_cell(row.get(c)) for c in columns]
        table.add_row(*cells, Path(row["run_dir"]).name + (" (failed)" if row.get("failed") else ""))
    Console().print(table)


def _overrides(run: Path) -> dict[str, str]:
    """The run's command-line overrides (`.hydra/overrides.yaml`), as key -> value."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return dict(item.lstrip("+~").split("=", 1) for item in items if "=" in item)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
