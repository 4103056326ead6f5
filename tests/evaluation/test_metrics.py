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


# --- multi-label ---

#: 4 images, 3 classes; class 2 has no positive image (no AP: left out of the mAP)
ML_PROBS = torch.tensor([[0.9, 0.2, 0.1], [0.6, 0.7, 0.3], [0.4, 0.8, 0.6], [0.3, 0.1, 0.2]])
ML_TARGET = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_multilabel_metrics_match_hand_computation() -> None:
    from lightcls.evaluation.metrics import multilabel_metrics

    m = multilabel_metrics(ML_PROBS, ML_TARGET, ["a", "b", "c"], [0.5, 0.5, 0.5])
    # class a: scores 0.9 (pos), 0.6 (neg), 0.4 (pos), 0.3 -> AP = (1/1 + 2/3) / 2; class b: both positives
    # ranked first -> AP 1; class c: no positive -> None, and the mAP averages a and b only
    assert m["per_class"][0]["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["per_class"][1]["ap"] == pytest.approx(1.0)
    assert m["per_class"][2]["ap"] is None
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    # at 0.5: a predicted on images 0, 1 (tp 1, fp 1, fn 1); b on 1, 2 (tp 2); c on 2 (fp 1)
    a = m["per_class"][0]
    assert (a["precision"], a["recall"], a["f1"], a["support"], a["threshold"]) == (0.5, 0.5, 0.5, 2, 0.5)
    assert m["micro"]["precision"] == pytest.approx(3 / 5) and m["micro"]["recall"] == pytest.approx(3 / 4)
    assert m["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["f1_macro"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["label_counts"] == {"true": {"0": 1, "1": 2, "2": 1}, "predicted": {"0": 1, "1": 1, "2": 2}}
    # a spurious `a` on image 1 (which has b), a spurious `c` on image 2 (which has a and b)
    pairs = {(p["true_class"], p["pred_class"]): p["count"] for p in m["confused_pairs"]}
    assert pairs == {("b", "a"): 1, ("a", "c"): 1, ("b", "c"): 1}


def test_tuned_thresholds_beat_one_half_on_an_imbalanced_set() -> None:
    from lightcls.evaluation.metrics import macro_f1, tune_thresholds

    generator = torch.Generator().manual_seed(0)
    target = (torch.rand(400, 3, generator=generator) < torch.tensor([0.5, 0.1, 0.03])).long()
    # a model whose scores for the rare classes rank well but sit low, as BCE leaves them
    probs = (0.33 * target + 0.3 * torch.rand(400, 3, generator=generator)).clamp(0, 1)
    tuned = tune_thresholds(probs, target)
    assert macro_f1(probs, target, tuned) > macro_f1(probs, target, [0.5] * 3) + 0.3
    assert macro_f1(probs, target, tuned) == pytest.approx(1.0)  # here the classes separate perfectly
