"""lightcls-eval: metrics against a hand computation, and a real checkpoint against its run's metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from lightcls.evaluation import classification_report
from lightcls.tasks import evaluate
from lightcls_cli import compose_task, quoted, run_entry


def _onehot_probs(preds: list[int], num_classes: int) -> torch.Tensor:
    probs = torch.full((len(preds), num_classes), 0.1 / (num_classes - 1))
    probs[torch.arange(len(preds)), torch.tensor(preds)] = 0.9
    return probs


def test_report_matches_hand_computation() -> None:
    target = torch.tensor([0, 0, 0, 1, 1, 2])
    probs = _onehot_probs([0, 0, 1, 1, 2, 2], 3)
    report = classification_report(probs, target, ["a", "b", "c"])

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
    report = classification_report(probs, torch.tensor([1, 5]), list("abcdefg"))
    assert report["top1"] == 0.0
    assert report["top5"] == pytest.approx(0.5)


def test_eval_of_the_best_checkpoint_matches_training_test_top1(trained_run: Path, tmp_path: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    ckpt = trained_run / metrics["best_ckpt"]
    cfg = compose_task("eval", [f"ckpt_path={quoted(ckpt)}", "formats=[json,csv]"], tmp_path)
    report = evaluate(cfg)  # data.root comes from the run's metrics.json

    assert report["top1"] == pytest.approx(metrics["test_top1"], abs=1e-6)
    assert report["top5"] == pytest.approx(metrics["test_top5"], abs=1e-6)
    assert report["classes"] == metrics["classes"]
    assert sum(sum(row) for row in report["confusion_matrix"]) == report["num_images"]
    assert json.loads((tmp_path / "eval.json").read_text())["top1"] == report["top1"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert len(rows) == report["num_images"]
    accuracy = sum(int(r["correct"]) for r in rows) / len(rows)
    assert accuracy == pytest.approx(report["top1"])
    assert [r["class"] for r in csv.DictReader((tmp_path / "eval.csv").open())][-3:] == [
        "macro avg",
        "weighted avg",
        "top1",
    ]


def test_eval_command_on_the_val_split(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", "data=digits", f"data.root={digits_root}", "split=val"]
    result = run_entry("evaluate", [*args, f"paths.outputs_root={tmp_path}/outputs"], tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "outputs" / "eval" / "runs").iterdir()
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["split"] == "val" and report["num_images"] == 270
    assert f"top1 {report['top1']:.4f}" in result.stdout
    assert "weighted avg" in result.stdout


def test_eval_errors_are_one_line(trained_run: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    result = run_entry(
        "evaluate", [f"ckpt_path={ckpt}", "split=train", f"paths.outputs_root={tmp_path}"], tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: split=train: unknown split; choose one of val, test"
