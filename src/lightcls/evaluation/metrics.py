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
    multilabel_average_precision,
    multilabel_stat_scores,
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


def average_precisions(probs: torch.Tensor, target: torch.Tensor) -> list[float | None]:
    """Each class's average precision (torchmetrics, exact); None for a class with no positive image."""
    if len(probs) == 0:
        return [None] * probs.shape[-1]
    target = target.long()
    ap = multilabel_average_precision(probs.float(), target, probs.shape[-1], average="none")
    positives = target.sum(dim=0)
    return [float(a) if p > 0 else None for a, p in zip(ap.tolist(), positives.tolist(), strict=True)]


def mean_average_precision(probs: torch.Tensor, target: torch.Tensor) -> float:
    """mAP: the mean of the per-class average precisions over the classes with a positive image (as
    mmpretrain's); 0 when there is none."""
    aps = [a for a in average_precisions(probs, target) if a is not None]
    return sum(aps) / len(aps) if aps else 0.0


def binarize(probs: torch.Tensor, thresholds: Sequence[float] | torch.Tensor | float) -> torch.Tensor:
    """Which labels a multi-label model predicts: probability >= its class's threshold (0/1 ints)."""
    limit = torch.as_tensor(thresholds, dtype=probs.dtype, device=probs.device)
    return (probs >= limit).int()


def multilabel_metrics(
    probs: torch.Tensor,
    target: torch.Tensor,
    classes: Sequence[str],
    thresholds: Sequence[float],
) -> dict[str, Any]:
    """A multi-label evaluation: mAP (macro average precision, the model-selection metric), per-class AP and
    precision/recall/F1 at each class's threshold, their micro and macro averages, how many labels images
    have (true and predicted), and the label pairs most often confused (a spurious label on images of
    another)."""
    n = len(classes)
    target = target.long()
    predicted = binarize(probs, thresholds)
    tp, fp, _, fn, support = multilabel_stat_scores(predicted, target, n, average="none").T.tolist()
    aps = average_precisions(probs, target)

    def ratios(tp: float, fp: float, fn: float) -> dict[str, float]:
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}

    per_class = [
        {
            "label": i,
            "class": classes[i],
            "ap": aps[i],
            "threshold": float(thresholds[i]),
            **ratios(tp[i], fp[i], fn[i]),
            "support": int(support[i]),
        }
        for i in range(n)
    ]
    micro = {**ratios(sum(tp), sum(fp), sum(fn)), "support": int(sum(support))}
    macro = {k: sum(row[k] for row in per_class) / n for k in ("precision", "recall", "f1")}
    true_counts = target.sum(dim=1).tolist()
    predicted_counts = predicted.sum(dim=1).tolist()
    return {
        "task": "multilabel",
        "num_images": len(target),
        "map": mean_average_precision(probs, target),
        "f1_micro": micro["f1"],
        "f1_macro": macro["f1"],
        "precision": micro["precision"],
        "recall": micro["recall"],
        "threshold": _threshold_summary(thresholds),
        "exact_match": float((predicted == target).all(dim=1).float().mean()) if len(target) else 0.0,
        "per_class": per_class,
        "micro": micro,
        "macro": {**macro, "support": int(sum(support))},
        "label_counts": {
            "true": _histogram(true_counts),
            "predicted": _histogram(predicted_counts),
        },
        "confused_pairs": confused_label_pairs(predicted, target, classes),
    }


def _threshold_summary(thresholds: Sequence[float]) -> float | list[float]:
    """One number when every class shares it, else the list."""
    values = [round(float(t), 4) for t in thresholds]
    return values[0] if len(set(values)) == 1 else values


def _histogram(counts: list[int]) -> dict[str, int]:
    """How many images have 0, 1, 2, ... labels."""
    found: dict[str, int] = {}
    for count in sorted(counts):
        found[str(count)] = found.get(str(count), 0) + 1
    return found


def confused_label_pairs(
    predicted: torch.Tensor, target: torch.Tensor, classes: Sequence[str], top: int = 10
) -> list[dict[str, Any]]:
    """The most frequent (true label, spurious label) pairs: a label predicted on an image that lacks it,
    counted against each label the image has."""
    spurious = (predicted.bool() & ~target.bool()).float()
    pairs = target.float().T @ spurious  # [i, j]: images with label i where j was predicted but absent
    pairs.fill_diagonal_(0)
    order = pairs.flatten().argsort(descending=True)[:top]
    n = len(classes)
    return [
        {"true_class": classes[i // n], "pred_class": classes[i % n], "count": int(pairs.flatten()[i])}
        for i in order.tolist()
        if pairs.flatten()[i] > 0
    ]


def macro_f1(probs: torch.Tensor, target: torch.Tensor, thresholds: Sequence[float]) -> float:
    """The mean over classes of F1 at each class's threshold."""
    predicted = binarize(probs, thresholds)
    tp, fp, _, fn, _ = multilabel_stat_scores(predicted, target.long(), probs.shape[-1], average="none").T
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    return float(f1.float().mean())


def tune_thresholds(probs: torch.Tensor, target: torch.Tensor, default: float = 0.5) -> list[float]:
    """Per-class thresholds that maximise each class's F1 on these predictions (a class with no positive
    keeps `default`): candidates are the midpoints between its sorted scores."""
    chosen = []
    target = target.bool()
    for c in range(probs.shape[-1]):
        scores, truth = probs[:, c].float(), target[:, c]
        if not truth.any():
            chosen.append(default)
            continue
        order = scores.argsort(descending=True)
        sorted_scores, sorted_truth = scores[order], truth[order].float()
        tp = sorted_truth.cumsum(0)
        fp = (1 - sorted_truth).cumsum(0)
        f1 = 2 * tp / (tp + fp + truth.sum())  # predicting the top k+1 as positive
        best = int(f1.argmax())
        below = float(sorted_scores[best + 1]) if best + 1 < len(sorted_scores) else 0.0
        chosen.append((float(sorted_scores[best]) + below) / 2)
    return chosen


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
    if metrics.get("task") == "multilabel":
        _write_multilabel_csv(metrics, path)
        return
    fields = ["class", "label", "precision", "recall", "f1", "support"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(metrics["per_class"])
        for mode in AVERAGES:
            writer.writerow({"class": f"{mode} avg", "label": "", **metrics[mode]})
        writer.writerow({"class": "top1", "precision": metrics["top1"], "support": metrics["num_images"]})


def _write_multilabel_csv(metrics: dict[str, Any], path: Path) -> None:
    fields = ["class", "label", "ap", "threshold", "precision", "recall", "f1", "support"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(metrics["per_class"])
        for mode in ("micro", "macro"):
            writer.writerow({"class": f"{mode} avg", "label": "", **metrics[mode]})
        writer.writerow({"class": "mAP", "ap": metrics["map"], "support": metrics["num_images"]})
