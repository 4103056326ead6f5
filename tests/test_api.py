"""The beginner API: Classifier trains through the same configs and task, saves, reloads, predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
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
    assert model.run_dir == run_dir and (run_dir / "report.html").is_file()  # written at the end
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

    (cam,) = reloaded.explain(image, target="four")  # where it looks for a four
    assert cam.target == "four" and cam.cam.shape == (32, 32) and cam.overlay().shape == (32, 32, 3)
    page = model.report()
    assert page == run_dir / "report.html" and "Per class (test split, 270 images)" in page.read_text()


def test_train_without_validation_keeps_last_only(digits_root: Path, tmp_path: Path) -> None:
    metrics = Classifier("lenet").train(
        data=digits_root, epochs=1, validate=False, outputs=tmp_path, overrides=["report=false"]
    )
    assert metrics["best_val_top1"] is None and metrics["best_ckpt"] is None
    assert metrics["last_ckpt"] == "checkpoints/last.ckpt"
    assert metrics["test_top1"] is not None


def test_models_and_mistakes() -> None:
    assert {"lenet", "resnet18"} <= set(Classifier.models())
    with pytest.raises(LightclsError, match=r"^unknown model 'lenet6' \(did you mean lenet, "):
        Classifier("lenet6")
    with pytest.raises(LightclsError, match=r"^this Classifier is not trained: call train"):
        Classifier("lenet").predict("x.png")


def test_the_mmedu_tutorial_as_written(make_split_folder, tmp_path: Path, capsys, monkeypatch) -> None:
    from lightcls import Classifier as cls

    monkeypatch.chdir(tmp_path)
    dataset = make_split_folder()  # rock-paper-scissors shaped: classes.txt, training_set, val_set, test_set
    model = cls("LeNet")  # MMEdu's spelling
    model.num_classes = 3
    model.load_dataset(path=str(dataset))
    model.save_fold = "checkpoints/cls_model/hand_gray"
    model.train(epochs=2, validate=True, optimizer="SGD", random_seed=0, metric="accuracy")
    fold = tmp_path / "checkpoints" / "cls_model" / "hand_gray"
    checkpoint = fold / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and (fold / "train.log").is_file()
    assert "[Epoch 2/2] train loss" in capsys.readouterr().out  # the epoch lines, as the command line shows

    img = str(dataset / "test_set" / "rock" / "rock00.png")
    model = cls("LeNet")
    model.checkpoint = str(checkpoint)
    result = model.inference(image=img, show=True, checkpoint=str(checkpoint))
    model.print_result()
    assert result[0]["pred_class"] in ("paper", "rock", "scissors")
    assert (tmp_path / "cls_result" / "rock00.png").is_file()  # MMEdu's default save_fold
    assert "rock00.png" in capsys.readouterr().out

    model.load_checkpoint(checkpoint=str(checkpoint))
    assert model.fast_inference(image=img)[0]["pred_label"] == result[0]["pred_label"]

    model = cls("LeNet")  # continue training, MMEdu's main workflow
    model.num_classes = 3
    model.load_dataset(path=str(dataset))
    model.save_fold = "checkpoints/cls_model/hand_gray"
    metrics = model.train(epochs=4, validate=True, checkpoint=str(checkpoint))
    assert metrics["epochs"] == 4 and metrics["global_step"] == 4 * 1  # 12 images, batch 32: 1 step an epoch
    assert {"lenet", "mobilenet_v2"} <= set(cls.sota())
    assert cls("MobileNet").backbone == "mobilenet_v2" and cls("ResNet18").backbone == "resnet18"
    model.num_classes = 5
    with pytest.raises(LightclsError, match=r"^num_classes=5, but the data set has 3 classes$"):
        model.train(epochs=1)
    model.num_classes = 3
    config = (fold / ".hydra" / "config.yaml").read_text()
    with pytest.raises(LightclsError, match=rf"^run dir {fold} holds another run's results \(metrics.json, "):
        model.train(epochs=1)  # a new run into the same save_fold: the first one's results are kept
    assert (fold / ".hydra" / "config.yaml").read_text() == config
    if not torch.cuda.is_available():
        with pytest.raises(LightclsError, match=r"^distributed=True trains on several GPUs \(DDP\)"):
            model.train(epochs=1, distributed=True)

    exported = model.convert(checkpoint=str(checkpoint), out_file="model/hand_gray.onnx")  # MMEdu's export
    assert exported["model"] == str(tmp_path / "model" / "hand_gray.onnx") and exported["same_top1"]
    assert (tmp_path / "model" / "hand_gray.json").is_file()


def test_serve_builds_the_server_for_its_checkpoint(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    from lightcls.tasks import serve as serve_task

    served = {}
    monkeypatch.setattr(serve_task, "run_server", lambda server, host, port, level: served.update(locals()))
    model = Classifier.load(trained_run / "checkpoints" / "last.ckpt")
    result = model.serve(port=8123, outputs=tmp_path)
    assert served["host"] == "127.0.0.1" and served["port"] == 8123 and result["port"] == 8123
    paths = {getattr(route, "path", None) for route in served["server"].app.router.routes}
    assert {"/", "/predict", "/health", "/info"} <= paths
    assert served["server"].model_metadata["classes"] == model.classes
