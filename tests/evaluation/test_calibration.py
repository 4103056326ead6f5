"""Calibration figures: ECE and its bins, a fitted temperature, answering above a minimum score."""

from __future__ import annotations

import pytest
import torch

from lightcls.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    risk_coverage,
    selective,
    unscaled,
)


def _overconfident(n: int = 4000, classes: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits three times sharper than honest ones: labels are drawn from softmax(z), the model says 3z."""
    g = torch.Generator().manual_seed(seed)
    honest = torch.randn(n, classes, generator=g) * 2
    target = torch.multinomial(honest.softmax(1), 1, generator=g).squeeze(1)
    return honest * 3, target


def test_a_fitted_temperature_lowers_the_ece_of_an_overconfident_model() -> None:
    logits, target = _overconfident()
    before = expected_calibration_error(logits.softmax(1), target)
    temperature = fit_temperature(logits[:2000], target[:2000])  # fitted on one half, judged on the other
    after = expected_calibration_error((logits[2000:] / temperature).softmax(1), target[2000:])
    assert before > 0.15 and after < 0.03
    assert temperature == pytest.approx(3, rel=0.15)  # it finds how much sharper the model is
    assert nll(logits[2000:], target[2000:], temperature) < nll(logits[2000:], target[2000:])
    assert ((logits / temperature).argmax(1) == logits.argmax(1)).all()  # top-1 unchanged


def test_reliability_bins_count_every_image_and_weigh_into_the_ece() -> None:
    logits, target = _overconfident(seed=1)
    probs = logits.softmax(1)
    bins = reliability(probs, target)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == len(target)
    filled = [b for b in bins if b["count"]]
    gap = sum(b["count"] * abs(b["confidence"] - b["accuracy"]) for b in filled) / len(target)
    assert gap == pytest.approx(expected_calibration_error(probs, target), abs=1e-5)


def test_unscaled_recovers_the_probabilities_before_the_temperature() -> None:
    logits, _ = _overconfident(n=50)
    assert torch.allclose(unscaled((logits / 2.5).softmax(1), 2.5), logits.softmax(1), atol=1e-5)


def test_answering_above_a_minimum_score() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.4, 0.6]])
    target = torch.tensor([0, 1, 1, 0])
    chosen = selective(probs, target, 0.6)
    assert chosen == {"min_score": 0.6, "coverage": 0.75, "accuracy": pytest.approx(2 / 3), "unknown": 1}
    assert selective(probs, target, 0.95)["accuracy"] is None
    curve = risk_coverage(probs, target, points=4)
    assert curve == [(0.25, 1.0), (0.5, 1.0), (0.75, pytest.approx(2 / 3)), (1.0, 0.5)]
