"""Classification metrics from predicted probabilities (torchmetrics), and how to write them."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from lightcls.errors import LightclsError

FORMATS = ("json", "yaml", "csv")


def classification_report(
    probs: torch.Tensor, target: torch.Tensor, classes: Sequence[str]
) -> dict[str, Any]:
    """Top-1, top-5 (more than 5 classes), per-class precision/recall/F1/support, macro and weighted
    averages and the confusion matrix (rows: true class, columns: predicted) of `probs` (N, C)."""
    n = len(classes)
    kw: dict[str, Any] = {"num_classes": n}
    report: dict[str, Any] = {
        "num_images": int(target.numel()),
        "top1": float(multiclass_accuracy(probs, target, average="micro", top_k=1, **kw)),
        "top5": float(multiclass_accuracy(probs, target, average="micro", top_k=5, **kw)) if n > 5 else None,
    }
    scores = {
        "precision": multiclass_precision,
        "recall": multiclass_recall,
        "f1": multiclass_f1_score,
    }
    support = torch.bincount(target, minlength=n)
    per_class = {name: fn(probs, target, average="none", **kw) for name, fn in scores.items()}
    report["per_class"] = [
        {
            "label": i,
            "class": classes[i],
            **{name: float(values[i]) for name, values in per_class.items()},
            "support": int(support[i]),
        }
        for i in range(n)
    ]
    for average in ("macro", "weighted"):
        report[average] = {
            name: float(fn(probs, target, average=average, **kw)) for name, fn in scores.items()
        }
        report[average]["support"] = int(support.sum())
    report["confusion_matrix"] = multiclass_confusion_matrix(probs, target, **kw).tolist()
    return report


def write_report(report: dict[str, Any], out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write `report` as eval.json / eval.yaml / eval.csv (per-class rows plus the averages)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise LightclsError(f"formats: unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    written = []
    for fmt in formats:
        path = out_dir / f"eval.{fmt}"
        if fmt == "json":
            path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        elif fmt == "yaml":
            import yaml

            path.write_text(yaml.safe_dump(report, sort_keys=False), encoding="utf-8")
        else:
            _write_csv(report, path)
        written.append(path)
    return written


def _write_csv(report: dict[str, Any], path: Path) -> None:
    fields = ["class", "label", "precision", "recall", "f1", "support"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(report["per_class"])
        for average in ("macro", "weighted"):
            writer.writerow({"class": f"{average} avg", "label": "", **report[average]})
        writer.writerow({"class": "top1", "precision": report["top1"], "support": report["num_images"]})
