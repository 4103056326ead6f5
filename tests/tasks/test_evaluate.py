"""lightcls-eval: a real checkpoint, alone, against its run's metrics (DataModule and trainer.test)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from helpers import compose_task, one_line_error, quoted
from lightcls.tasks import evaluate, export


def test_eval_of_the_best_checkpoint_matches_training_test_top1(trained_run: Path, tmp_path: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    ckpt = trained_run / metrics["best_ckpt"]
    cfg = compose_task("eval", [f"ckpt_path={quoted(ckpt)}", "formats=[json,csv]"], tmp_path)
    report = evaluate(cfg)  # the data set comes from the checkpoint itself

    assert report["top1"] == pytest.approx(metrics["test_top1"], abs=1e-6)
    assert report["top5"] == pytest.approx(metrics["test_top5"], abs=1e-6)
    assert report["classes"] == metrics["classes"]
    assert (
        sum(sum(row) for row in report["confusion_matrix"]) == report["num_images"] == metrics["test_images"]
    )
    assert json.loads((tmp_path / "eval.json").read_text())["top1"] == report["top1"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert len(rows) == report["num_images"]
    accuracy = sum(int(r["correct"]) for r in rows) / len(rows)
    assert accuracy == pytest.approx(report["top1"])
    assert [r["class"] for r in csv.DictReader((tmp_path / "eval.csv").open())][-4:] == [
        "macro avg",
        "weighted avg",
        "micro avg",
        "top1",
    ]


def test_a_checkpoint_copied_alone_evaluates_its_own_test_split(
    trained_run: Path, tmp_path: Path, capsys
) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    alone = tmp_path / "elsewhere" / "model.ckpt"  # no metrics.json, no run dir, no data.root
    alone.parent.mkdir()
    shutil.copy(trained_run / metrics["best_ckpt"], alone)
    evaluate(compose_task("eval", [f"ckpt_path={quoted(alone)}"], tmp_path / "run"))
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert report["top1"] == pytest.approx(metrics["test_top1"], abs=1e-6)
    assert report["num_images"] == metrics["test_images"] == 270
    assert report["data"] == metrics["data"]
    shown = capsys.readouterr().out
    assert f"top1 {report['top1']:.4f}" in shown and "weighted avg" in shown


def test_the_val_split_and_another_data_root(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    moved = tmp_path / "digits_copy"
    shutil.copytree(digits_root, moved, ignore=shutil.ignore_patterns(".lightcls*"))
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    report = evaluate(
        compose_task("eval", [f"ckpt_path={ckpt}", f"data.root={moved}", "split=val"], tmp_path)
    )
    assert report["split"] == "val" and report["num_images"] == 270 and report["data"] == str(moved)


def test_eval_errors_are_one_line(trained_run: Path, make_split_folder, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_task("eval", [f"ckpt_path={ckpt}", "split=train"], tmp_path)
    assert one_line_error(evaluate, cfg) == "split=train: unknown split; choose one of val, test"
    other = make_split_folder()
    cfg = compose_task("eval", [f"ckpt_path={ckpt}", f"data.root={other}"], tmp_path)
    assert one_line_error(evaluate, cfg).startswith(
        f"data.root={other}: its classes (paper, rock, scissors) differ from the checkpoint's (zero, one,"
    )


def test_topk_average_show_dir_and_scores(trained_run: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    show = tmp_path / "shown"
    args = [f"ckpt_path={quoted(ckpt)}", "topk=[1,3]", "average=micro", f"show_dir={show}"]
    report = evaluate(compose_task("eval", args, tmp_path / "run"))
    assert report["top3"] >= report["top1"] and report["average"] == "micro"
    assert report["precision"] == pytest.approx(report["top1"], abs=1e-6)  # micro precision is accuracy
    assert {"macro", "weighted", "micro"} <= set(report)
    right, wrong = (sorted((show / part).glob("*.png")) for part in ("right", "wrong"))
    assert len(right) + len(wrong) == report["num_images"] == 270
    assert len(wrong) == round((1 - report["top1"]) * 270)
    rows = list(csv.reader((tmp_path / "run" / "scores.csv").open()))
    assert rows[0] == ["file", "true_label", *report["classes"]] and len(rows) == 271
    assert sum(float(p) for p in rows[1][2:]) == pytest.approx(1.0, abs=1e-4)


@pytest.fixture(scope="module")
def last_ckpt_report(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """lightcls-eval of the session run's last.ckpt."""
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    return evaluate(compose_task("eval", [f"ckpt_path={quoted(ckpt)}"], tmp_path_factory.mktemp("ckpt_eval")))


@pytest.mark.parametrize("how", [["format=onnx"], ["format=torchscript"], ["format=onnx", "fp16=true"]])
def test_an_exported_model_is_evaluated_through_the_same_report(
    trained_run: Path, exported_onnx: Path, last_ckpt_report: dict, tmp_path: Path, how: list[str]
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    if how == ["format=onnx"]:  # the session's own export
        model = exported_onnx
    else:
        model = Path(
            export(compose_task("export", [f"ckpt_path={quoted(ckpt)}", *how], tmp_path / "x"))["model"]
        )
    assert model.suffix == (".pt" if "format=torchscript" in how else ".onnx")
    report = evaluate(compose_task("eval", [f"ckpt_path={model}"], tmp_path / "exported"))
    ckpt_report = last_ckpt_report
    assert report["num_images"] == ckpt_report["num_images"] == 270  # its data set, from model.json
    assert report["top1"] == pytest.approx(ckpt_report["top1"], abs=1 / 270)


def test_a_sweep_dir_evaluates_its_best_run(trained_run: Path, tmp_path: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    best = trained_run / metrics["best_ckpt"]
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    rows = [
        {"best_ckpt": None},
        {"best_ckpt": str(best)},
        {"best_ckpt": str(trained_run / "checkpoints/last.ckpt")},
    ]
    (sweep / "summary.json").write_text(json.dumps(rows))
    report = evaluate(compose_task("eval", [f"ckpt_path={sweep}"], tmp_path / "run"))
    assert report["ckpt"] == str(best.resolve()) and report["top1"] == pytest.approx(
        metrics["test_top1"], abs=1e-6
    )


def test_a_negative_gallery_size_is_one_line(trained_run: Path, tmp_path: Path) -> None:
    from helpers import one_line_error

    cfg = compose_task(
        "eval", [f"ckpt_path={quoted(trained_run / 'checkpoints' / 'last.ckpt')}", "gallery=-1"], tmp_path
    )
    assert one_line_error(evaluate, cfg) == "gallery=-1: give a whole number >= 0"


def test_calibrate_fits_a_temperature_that_predict_export_and_eval_apply(
    trained_run: Path, digits_root: Path, tmp_path: Path
) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from lightcls.inference import CheckpointPredictor
    from lightcls.tasks import predict

    ckpt = tmp_path / "model.ckpt"
    shutil.copy(trained_run / "checkpoints" / "last.ckpt", ckpt)
    plain = evaluate(compose_task("eval", [f"ckpt_path={quoted(ckpt)}"], tmp_path / "plain"))
    assert plain["temperature"] == 1.0 and "ece_uncalibrated" not in plain
    args = [f"ckpt_path={quoted(ckpt)}", "calibrate=true", "min_score=0.9"]
    report = evaluate(compose_task("eval", args, tmp_path / "calibrated"))
    saved = json.loads((tmp_path / "calibrated" / "eval.json").read_text())
    temperature = float(torch.load(ckpt, weights_only=True)["state_dict"]["temperature"])
    assert saved["temperature"] == pytest.approx(temperature, abs=1e-5) and temperature != 1.0
    assert saved["ece"] < saved["ece_uncalibrated"] == pytest.approx(plain["ece"], abs=1e-4)
    assert report["top1"] == pytest.approx(plain["top1"])  # a temperature never moves the top-1
    assert (tmp_path / "calibrated" / "reliability.svg").read_text().startswith("<svg")
    chosen = saved["selective"]
    assert chosen["min_score"] == 0.9 and 0 < chosen["coverage"] < 1 and chosen["accuracy"] > report["top1"]

    # predict answers `unknown` below min_score: as many as eval left unknown on the same test split
    summary = predict(
        compose_task(
            "predict",
            [f"ckpt_path={quoted(ckpt)}", f"input={digits_root / 'test_set'}", "min_score=0.9"],
            tmp_path / "p",
        )
    )
    unknown = [r for r in summary["results"] if r["pred_class"] == "unknown"]
    assert len(unknown) == chosen["unknown"] and all(r["pred_label"] == -1 for r in unknown)
    assert all(r["pred_score"] < 0.9 and r["topk"][0]["class"] != "unknown" for r in unknown)

    # the checkpoint's scores are softmax(logits / T), and its ONNX export computes the same
    predictor = CheckpointPredictor(ckpt)
    image = sorted((digits_root / "test_set" / "three").iterdir())[0]
    batch = predictor.transform(predictor.to_tensor(image))[None]
    raw = predictor.module(batch)
    scores = predictor.probabilities([predictor.to_tensor(image)])
    assert torch.allclose(scores, (raw / temperature).softmax(1), atol=1e-5)
    result = export(compose_task("export", [f"ckpt_path={quoted(ckpt)}"], tmp_path / "x"))
    assert json.loads(Path(result["contract"]).read_text())["temperature"] == pytest.approx(temperature)
    session = ort.InferenceSession(result["model"], providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"input": batch.numpy()})[0]
    assert np.allclose(onnx_logits, (raw / temperature).detach().numpy(), atol=1e-4)


def test_an_exported_model_cannot_be_calibrated_and_a_bad_tta_is_one_line(
    exported_onnx: Path, trained_run: Path, tmp_path: Path
) -> None:
    message = one_line_error(
        evaluate, compose_task("eval", [f"ckpt_path={exported_onnx}", "calibrate=true"], tmp_path)
    )
    assert message == (
        "calibrate=true: model.onnx is an exported model; calibrate its .ckpt, then export it again"
    )
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    message = one_line_error(
        evaluate, compose_task("eval", [f"ckpt_path={quoted(ckpt)}", "tta=mirror"], tmp_path)
    )
    assert message == "tta=mirror: choose one of none, flip, five_crop"
