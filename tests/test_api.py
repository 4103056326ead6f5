"""The beginner API: Classifier trains through the same configs and task, saves, reloads, predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightcls import Classifier, LightclsError


def test_train_save_reload_predict(digits_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = Classifier("lenet")
    metrics = model.train(
        data=digits_root,
        epochs=2,
        lr=0.05,
        batch_size=64,
        device="cpu",
        optimizer="sgd",
        outputs=tmp_path / "outputs",
    )
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert model.run_dir == run_dir
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert metrics["model"] == "lenet" and metrics["epochs"] == 2 and metrics["best_val_top1"] > 0.5
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "name: lenet" in config and "image_size: 32" in config and "lr: 0.05" in config
    assert model.checkpoint == run_dir / metrics["best_ckpt"] and model.checkpoint.is_file()
    assert "training lenet on digits" in (run_dir / "train.log").read_text()  # as a command-line run's

    image = sorted((digits_root / "test_set" / "four").iterdir())[0]
    result = model.predict(image)
    assert set(result) == {"file", "pred_label", "pred_score", "pred_class", "topk"}
    assert result["pred_class"] == model.classes[result["pred_label"]]

    reloaded = Classifier.load(model.checkpoint)  # load once, predict many (fast_inference)
    assert reloaded.backbone == "lenet" and reloaded.classes == metrics["classes"]
    again = reloaded.predict(str(image))
    assert again["pred_label"] == result["pred_label"]
    assert again["pred_score"] == pytest.approx(result["pred_score"], abs=1e-6)
    array = np.array(Image.open(image))
    for form in (array, Image.open(image), array.astype(np.float32) / 255):
        same = reloaded.predict(form)
        assert same["pred_label"] == result["pred_label"]
        assert same["pred_score"] == pytest.approx(result["pred_score"], abs=1e-5)

    folder = reloaded.predict(digits_root / "test_set" / "four")
    assert len(folder) == 27 and sum(r["pred_class"] == "four" for r in folder) > 13
    reloaded.print_result(again)
    printed = capsys.readouterr().out
    assert result["pred_class"] in printed and image.name in printed


def test_train_without_validation_keeps_last_only(digits_root: Path, tmp_path: Path) -> None:
    metrics = Classifier("lenet").train(data=digits_root, epochs=1, validate=False, outputs=tmp_path)
    assert metrics["best_val_top1"] is None and metrics["best_ckpt"] is None
    assert metrics["last_ckpt"] == "checkpoints/last.ckpt"
    assert metrics["test_top1"] is not None


def test_models_and_mistakes() -> None:
    assert {"lenet", "resnet18"} <= set(Classifier.models())
    with pytest.raises(LightclsError, match=r"^unknown model 'lenet5'; choose one of: convnext_tiny, "):
        Classifier("lenet5")
    with pytest.raises(LightclsError, match=r"^this Classifier is not trained: call train"):
        Classifier("lenet").predict("x.png")
