"""The predict task: classify an image, a folder or a list of images; print, save, annotate, sort."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from lightcls.evaluation.annotate import annotate
from lightcls.files import write_json
from lightcls.inference import check_some_read, collect_inputs, load_predictor, predict_files
from lightcls.inference.embed import write_embeddings
from lightcls.workflows.checks import check_predict

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Classify `cfg.input` with `cfg.ckpt_path`; write predictions.json (and csv); return the results."""
    check_predict(cfg)
    files, skipped = collect_inputs(Path(str(cfg.input)).expanduser())
    predictor = load_predictor(str(cfg.ckpt_path), device=str(cfg.device), provider=cfg.provider)
    tta, min_score = str(cfg.get("tta") or "none"), cfg.get("min_score")
    results, unreadable = predict_files(predictor, files, int(cfg.batch_size), int(cfg.topk), tta, min_score)
    skipped += unreadable
    check_some_read(cfg.input, files, len(results), unreadable)

    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "ckpt": str(Path(str(cfg.ckpt_path)).resolve()),
        "input": str(Path(str(cfg.input)).resolve()),
        "classes": predictor.classes,
        "results": results,
        "skipped": skipped,
    }
    if cfg.get("embed"):
        done = [Path(r["file"]) for r in results]
        summary.update(write_embeddings(predictor, cfg.ckpt_path, done, int(cfg.batch_size), out_dir))
    write_json(out_dir / "predictions.json", summary)
    if "csv" in cfg.formats:
        _write_csv(results, out_dir / "predictions.csv")
    if cfg.annotate:
        for result in results:
            annotate(Path(result["file"]), result, out_dir / "annotated" / _flat_name(result["file"]))
    if cfg.sort_into:
        sort_into(results, Path(str(cfg.sort_into)).expanduser())
    print_results(results, skipped, out_dir, int(cfg.print_rows))
    return summary


def sort_into(results: list[dict[str, Any]], folder: Path) -> None:
    """Copy each image into `folder/<predicted class>/` (a name already taken gets a numbered suffix)."""
    for result in results:
        source = Path(result["file"])
        target = folder / result["pred_class"] / source.name
        n = 0
        while target.exists():
            n += 1
            target = target.with_name(f"{source.stem}_{n}{source.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def print_results(
    results: list[dict[str, Any]], skipped: list[dict[str, str]], out_dir: Path | None, rows: int
) -> None:
    """A table: file, predicted class, class index, confidence, top-k; then what was skipped."""
    table = Table(title=f"lightcls predict: {len(results)} images")
    multilabel = bool(results) and "labels" in results[0]
    columns = ("file", "labels", "top-k") if multilabel else ("file", "class", "label", "score", "top-k")
    for column in columns:
        table.add_column(column, justify="right" if column in ("label", "score") else "left")
    for result in results[:rows]:
        name = Path(result["file"]).name if "file" in result else "(image)"
        topk = ", ".join(f"{t['class']} {t['score']:.2f}" for t in result["topk"])
        if multilabel:
            labels = ", ".join(f"{t['class']} {t['score']:.2f}" for t in result["labels"]) or "(none)"
            table.add_row(name, labels, topk)
            continue
        table.add_row(
            name, result["pred_class"], str(result["pred_label"]), f"{result['pred_score']:.4f}", topk
        )
    console = Console()
    console.print(table)
    if len(results) > rows:
        console.print(f"... {len(results) - rows} more in predictions.json")
    for item in skipped:
        console.print(f"skipped {item['file']}: {item['reason']}", soft_wrap=True)
    if out_dir is not None:
        console.print(f"-> {out_dir / 'predictions.json'}", soft_wrap=True)


def _write_csv(results: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        multilabel = bool(results) and "labels" in results[0]
        writer.writerow(
            ["file", "pred_label", "pred_class", "pred_score", "topk", *(["labels"] * multilabel)]
        )
        for r in results:
            topk = ";".join(f"{t['class']}:{t['score']:.6f}" for t in r["topk"])
            labels = [";".join(f"{t['class']}:{t['score']:.6f}" for t in r["labels"])] if multilabel else []
            writer.writerow(
                [r["file"], r["pred_label"], r["pred_class"], f"{r['pred_score']:.6f}", topk, *labels]
            )


def _flat_name(file: str) -> str:
    """A file name for an annotated copy that keeps images of the same name apart."""
    path = Path(file)
    return f"{path.parent.name}__{path.stem}" if path.parent.name else path.stem
