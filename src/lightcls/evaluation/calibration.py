"""How far a model's scores can be trusted: expected calibration error, the reliability diagram, a fitted
temperature, and the accuracy and coverage of answering only above a minimum score."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

#: equal-width confidence bins of the expected calibration error (Guo et al. 2017)
BINS = 15


def expected_calibration_error(probs: torch.Tensor, target: torch.Tensor, bins: int = BINS) -> float:
    """ECE: the image-weighted mean gap between confidence and accuracy over `bins` confidence bins."""
    return float(multiclass_calibration_error(probs.float(), target, probs.shape[1], n_bins=bins, norm="l1"))


def reliability(probs: torch.Tensor, target: torch.Tensor, bins: int = BINS) -> list[dict[str, Any]]:
    """Per confidence bin: its range, image count, mean confidence and accuracy (the reliability diagram;
    torchmetrics gives only the ECE)."""
    confidence, predicted = probs.float().max(dim=1)
    correct = (predicted == target).float()
    index = (confidence * bins).ceil().long().clamp(1, bins) - 1
    rows = []
    for b in range(bins):
        chosen = index == b
        count = int(chosen.sum())
        rows.append(
            {
                "from": round(b / bins, 4),
                "to": round((b + 1) / bins, 4),
                "count": count,
                "confidence": float(confidence[chosen].mean()) if count else None,
                "accuracy": float(correct[chosen].mean()) if count else None,
            }
        )
    return rows


def fit_temperature(logits: torch.Tensor, target: torch.Tensor) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on `target`
    (temperature scaling: top-1 is unchanged, only the confidence moves)."""
    logits, target = logits.detach().float(), target.detach()
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().clamp(math.log(0.01), math.log(100.0)).exp())


def nll(logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> float:
    """The mean negative log-likelihood of softmax(logits / temperature)."""
    return float(F.cross_entropy(logits.float() / temperature, target))


def unscaled(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """The probabilities a model scaled by `temperature` gave before it: softmax(T log p) = softmax(z)."""
    if temperature == 1.0:
        return probs
    return (probs.float().clamp_min(1e-45).log() * temperature).softmax(dim=1)


def selective(probs: torch.Tensor, target: torch.Tensor, min_score: float) -> dict[str, Any]:
    """Answering only where the top score is >= `min_score` ("unknown" below): the share of images answered
    (coverage), their accuracy, and how many were left unknown."""
    confidence, predicted = probs.float().max(dim=1)
    answered = confidence >= min_score
    count = int(answered.sum())
    return {
        "min_score": min_score,
        "coverage": count / max(1, len(target)),
        "accuracy": float((predicted == target)[answered].float().mean()) if count else None,
        "unknown": len(target) - count,
    }


def risk_coverage(probs: torch.Tensor, target: torch.Tensor, points: int = 50) -> list[tuple[float, float]]:
    """(coverage, accuracy) of answering the most confident images first, at up to `points` coverages."""
    confidence, predicted = probs.float().max(dim=1)
    order = confidence.argsort(descending=True)
    correct = (predicted == target)[order].float().cumsum(0)
    n = len(target)
    if not n:
        return []
    counts = sorted({max(1, round(n * (i + 1) / points)) for i in range(points)})
    return [(count / n, float(correct[count - 1]) / count) for count in counts]
