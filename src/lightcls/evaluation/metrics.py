"""Classification metrics from predicted probabilities (torchmetrics), and how to write them."""

from __future__ import annotations

import csv
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
from lightcls.files import write_json

FORMATS = ("json", "yaml", "csv")


AVERAGES = ("macro", "weighted", "micro")


def check_metric_options(topk: Sequence[int], average: str) -> None:
    """`topk` whole numbers >= 1 and a known `average`, or a one-line LightclsError."""
    if average not in AVERAGES:
        raise LightclsError(f"average={average}: choose one of {', '.join(AVERAGES)}")
    bad = [k for k in topk if isinstance(k, bool) or not isinstance(k, int) or k < 1]
    if bad:
        raise LightclsError(f"topk: each k must be a whole number >= 1, got {bad[0]!r}")


def classification_metrics(
    probs: torch.Tensor,
    target: torch.Tensor,
    classes: Sequence[str],
    topk: Sequence[int] = (1, 5),
    average: str = "macro",
) -> dict[str, Any]:
    """Top-k accuracies (`top1` always; a k not below the class count is null), per-class
    precision/recall/F1/support, their macro, weighted and micro averages (`average` is also reported as the
    headline `precision`, `recall`, `f1`) and the confusion matrix (rows: true class, columns: predicted)."""
    n = len(classes)
    check_metric_options(topk, average)
    kw: dict[str, Any] = {"num_classes": n}
    metrics: dict[str, Any] = {"num_images": int(target.numel())}
    for k in sorted({1, *topk}):
        accuracy = (
            multiclass_accuracy(probs, target, average="micro", top_k=k, **kw) if k < n or k == 1 else None
        )
        metrics[f"top{k}"] = None if accuracy is None else float(accuracy)
    metrics.setdefault("top5", None)
    scores = {
        "precision": multiclass_precision,
        "recall": multiclass_recall,
        "f1": multiclass_f1_score,
    }
    support = torch.bincount(target, minlength=n)
    per_class = {name: fn(probs, target, average="none", **kw) for name, fn in scores.items()}
    metrics["per_class"] = [
        {
            "label": i,
            "class": classes[i],
            **{name: float(values[i]) for name, values in per_class.items()},
            "support": int(support[i]),
        }
        for i in range(n)
    ]
    for mode in AVERAGES:
        metrics[mode] = {name: float(fn(probs, target, average=mode, **kw)) for name, fn in scores.items()}
        metrics[mode]["support"] = int(support.sum())
    metrics["average"] = average
    metrics.update({name: metrics[average][name] for name in scores})
    metrics["confusion_matrix"] = multiclass_confusion_matrix(probs, target, **kw).tolist()
    return metrics


def write_metrics(metrics: dict[str, Any], out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Write `metrics` as eval.json / eval.yaml / eval.csv (per-class rows plus the averages)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise LightclsError(f"formats: unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    written = []
    for fmt in formats:
        path = out_dir / f"eval.{fmt}"
        if fmt == "json":
            write_json(path, metrics)
        elif fmt == "yaml":
            import yaml

            path.write_text(yaml.safe_dump(metrics, sort_keys=False), encoding="utf-8")
        else:
            _write_csv(metrics, path)
        written.append(path)
    return written


def _write_csv(metrics: dict[str, Any], path: Path) -> None:
    fields = ["class", "label", "precision", "recall", "f1", "support"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(metrics["per_class"])
        for mode in AVERAGES:
            writer.writerow({"class": f"{mode} avg", "label": "", **metrics[mode]})
        writer.writerow({"class": "top1", "precision": metrics["top1"], "support": metrics["num_images"]})
