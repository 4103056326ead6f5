"""Multi-label end to end: Classifier finds the annotation files, trains with tuned thresholds, and eval of
the checkpoint, of its ONNX export and through the API agree; predict lists the labels at the thresholds;
a multi-label report page. The data: the embedded digits, each tagged with its digit and its parity (a
set lenet learns in seconds; the canvases of several digits are the benchmark's)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from helpers import compose_task, compose_train, one_line_error, quoted
from lightcls import Classifier
from lightcls.data.digits import CLASSES
from lightcls.tasks import evaluate, export, predict, train


@pytest.fixture(scope="module")
def tags(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.csv, val.csv, test.csv naming the digits' images (absolute paths) with two labels each."""
    root = tmp_path_factory.mktemp("data") / "tags"
    root.mkdir()
    for split, folder in (("train", "training_set"), ("val", "val_set"), ("test", "test_set")):
        rows = ["filename,labels"]
        for image in sorted((digits_root / folder).glob("*/*.png")):
            digit = CLASSES.index(image.parent.name)
            rows.append(f"{image},{image.parent.name} {'odd' if digit % 2 else 'even'}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_train_tune_evaluate_export_predict(tags: Path, digits_root: Path, tmp_path: Path) -> None:
    model = Classifier("lenet")
    metrics = model.train(
        data=tags,  # images with train.csv, val.csv, test.csv beside them: data=multilabel, the format read
        epochs=4,
        save_fold=tmp_path / "run",
        overrides=[
            "data.image_size=16",
            "optimizer=adamw",
            "optimizer.lr=0.01",
            "threshold=tune",
            "report=true",
        ],
    )
    assert metrics["task"] == "multilabel" and metrics["test_images"] == 270
    assert Path(metrics["best_ckpt"]).name == f"best-map_{metrics['best_val_map']:.4f}.ckpt"
    assert metrics["test_map"] > 0.8  # a model that learned nothing: about the labels' frequency, 0.2
    assert isinstance(metrics["threshold"], list) and len(set(metrics["threshold"])) > 1  # tuned per class
    saved = torch.load(model.checkpoint, weights_only=True)["state_dict"]["thresholds"]
    assert saved.tolist() == pytest.approx(metrics["threshold"], abs=1e-4)
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Precision-recall per class" in page and "The worst images: missed and spurious labels" in page
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,train_loss,train_f1,lr,val_loss,val_map,val_f1_micro,val_f1_macro,")

    ckpt = quoted(model.checkpoint)
    from_ckpt = evaluate(compose_task("eval", [f"ckpt_path={ckpt}"], tmp_path / "eval"))
    export(compose_task("export", [f"ckpt_path={ckpt}"], tmp_path / "export"))
    onnx = tmp_path / "export" / "model.onnx"
    from_onnx = evaluate(compose_task("eval", [f"ckpt_path={quoted(onnx)}"], tmp_path / "eval_onnx"))
    from_api = Classifier.load(model.checkpoint).evaluate(outputs=tmp_path / "api")
    assert from_ckpt["map"] == pytest.approx(metrics["test_map"], abs=1e-4)
    assert from_onnx["map"] == pytest.approx(from_ckpt["map"], abs=1e-4)
    assert from_onnx["f1_macro"] == pytest.approx(from_ckpt["f1_macro"], abs=1e-4)  # the same probabilities
    assert from_api["map"] == pytest.approx(from_ckpt["map"], abs=1e-4)
    assert from_ckpt["threshold"] == metrics["threshold"]
    contract = json.loads((tmp_path / "export" / "model.json").read_text())
    assert contract["task"] == "multilabel" and contract["activation"] == "sigmoid"
    assert contract["thresholds"] == pytest.approx(saved.tolist(), abs=1e-5)

    # predict: every label at or above its threshold, as eval's predictions.csv has it
    with (tmp_path / "eval" / "predictions.csv").open() as f:
        expected = {Path(r["file"]).name: r["pred_labels"].split() for r in csv.DictReader(f)}
    result = predict(
        compose_task("predict", [f"ckpt_path={ckpt}", f"input={digits_root / 'test_set'}"], tmp_path / "p")
    )
    got = {Path(r["file"]).name: r for r in result["results"]}
    for name, labels in expected.items():
        chosen = got[name]["labels"]
        assert sorted(t["class"] for t in chosen) == sorted(labels)
        assert all(t["score"] >= metrics["threshold"][t["label"]] for t in chosen)


def test_a_multi_label_loss_on_single_label_data_is_one_line_before_any_run(
    digits_root: Path, tmp_path: Path
) -> None:
    from lightcls.workflows.checks import check_train

    cfg = compose_train([f"data.root={digits_root}", "loss=asl"], tmp_path / "run")
    message = one_line_error(check_train, cfg)  # what the command checks before its run dir exists
    assert message.startswith("loss=asl is for multi-label data (several labels per image); this data set")
    assert one_line_error(train, cfg) == message  # and a run started from Python, as it starts
    cfg = compose_train(["data=multilabel", f"data.root={tmp_path}", "loss=ce"], tmp_path / "run2")
    (tmp_path / "train.csv").write_text(f"filename,labels\n{next(digits_root.rglob('*.png'))},a b\n")
    assert one_line_error(check_train, cfg).startswith("loss=ce needs one label per image")
