"""The metrics report against a hand computation."""

from __future__ import annotations

import pytest
import torch

from lightcls.evaluation import classification_metrics


def _onehot_probs(preds: list[int], num_classes: int) -> torch.Tensor:
    probs = torch.full((len(preds), num_classes), 0.1 / (num_classes - 1))
    probs[torch.arange(len(preds)), torch.tensor(preds)] = 0.9
    return probs


def test_report_matches_hand_computation() -> None:
    target = torch.tensor([0, 0, 0, 1, 1, 2])
    probs = _onehot_probs([0, 0, 1, 1, 2, 2], 3)
    report = classification_metrics(probs, target, ["a", "b", "c"])

    # class a: tp 2 fp 0 fn 1; b: tp 1 fp 1 fn 1; c: tp 1 fp 1 fn 0
    expected = {"a": (1.0, 2 / 3, 0.8, 3), "b": (0.5, 0.5, 0.5, 2), "c": (0.5, 1.0, 2 / 3, 1)}
    for row in report["per_class"]:
        p, r, f1, support = expected[row["class"]]
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == support
    assert report["top1"] == pytest.approx(4 / 6)
    assert report["top5"] is None  # only 3 classes
    assert report["macro"]["precision"] == pytest.approx(2 / 3)
    assert report["macro"]["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert report["macro"]["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["weighted"]["precision"] == pytest.approx((3 * 1 + 2 * 0.5 + 1 * 0.5) / 6)
    assert report["weighted"]["recall"] == pytest.approx(4 / 6)
    assert report["weighted"]["f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_top5_counts_the_true_class_among_the_five_best() -> None:
    # 7 classes; sample 0: true class ranked 2nd; sample 1: true class ranked 6th (a top-5 miss)
    probs = torch.tensor(
        [[0.30, 0.25, 0.15, 0.10, 0.08, 0.07, 0.05], [0.30, 0.25, 0.15, 0.10, 0.08, 0.07, 0.05]]
    )
    report = classification_metrics(probs, torch.tensor([1, 5]), list("abcdefg"))
    assert report["top1"] == 0.0
    assert report["top5"] == pytest.approx(0.5)
