"""Distillation: the soft-target loss, a teacher fed through its own preprocessing, a student whose
checkpoint names its teacher and needs nothing of it afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch.nn import functional as F

from helpers import compose_task, compose_train, one_line_error, quoted
from lightcls.data.preprocess import Preprocess
from lightcls.models import build_model
from lightcls.tasks import evaluate, export, predict, train
from lightcls.training.distill import Teacher, distill_loss
from lightcls.workflows.checks import check_train


def test_the_soft_target_loss_is_kl_of_softened_outputs_times_t_squared() -> None:
    student, teacher = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.5, 1.5, 0.0]])
    expected = (
        F.kl_div(F.log_softmax(student / 4, -1), F.softmax(teacher / 4, -1), reduction="batchmean") * 16
    )
    assert torch.isclose(distill_loss(student, teacher, 4.0), expected)
    assert distill_loss(teacher, teacher, 2.0) < 1e-6  # agreeing with the teacher costs nothing
    bce = F.binary_cross_entropy_with_logits(student / 2, (teacher / 2).sigmoid()) * 4
    assert torch.isclose(distill_loss(student, teacher, 2.0, multilabel=True), bce)


def test_a_teacher_takes_the_students_batch_through_its_own_contract() -> None:
    rgb16 = Preprocess.from_dict({"image_size": 16, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3})
    gray32 = Preprocess.from_dict({"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]})
    seen = []
    net = build_model("lenet", 4, 3)
    net.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    teacher = Teacher(net, rgb16, gray32).train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    white = torch.ones(2, 1, 32, 32)  # a white gray image, normalized as the student sees it
    assert teacher(white).shape == (2, 4)
    assert seen[0].shape == (2, 3, 16, 16)
    assert torch.allclose(seen[0], torch.full_like(seen[0], 2.0))  # white, normalized as the teacher's


def test_a_distilled_small_stem_student_records_its_teacher_and_needs_it_no_more(
    trained_run: Path, digits_root: Path, tmp_path: Path
) -> None:
    teacher = tmp_path / "teacher.ckpt"
    shutil.copy(trained_run / "checkpoints" / "last.ckpt", teacher)
    overrides = [f"data.root={digits_root}", f"distill.teacher={quoted(teacher)}", "distill.alpha=0.7"]
    overrides += ["model=resnet18", "model.stem=small", "data.image_size=16", "data.batch_size=16"]
    overrides += ["trainer.max_epochs=1"]
    overrides += [
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
    ]
    metrics = train(compose_train(overrides, tmp_path / "student"))
    student = tmp_path / "student" / metrics["last_ckpt"]
    saved = torch.load(student, weights_only=True)
    assert saved["hyper_parameters"]["distill"] == {
        "teacher": str(teacher),
        "teacher_model": "lenet",
        "temperature": 4.0,
        "alpha": 0.7,
    }
    assert saved["hyper_parameters"]["model"]["stem"] == "small"  # at 16 px: the teacher sees its own 32
    assert not any("teacher" in key for key in saved["state_dict"])  # the teacher is no part of the student
    teacher.unlink()
    # eval, export and predict: the checkpoint alone rebuilds the small stem
    report = evaluate(compose_task("eval", [f"ckpt_path={quoted(student)}", "split=val"], tmp_path / "eval"))
    assert report["num_images"] == 270 and 0 <= report["top1"] <= 1
    # TorchScript: the same rebuild as ONNX, without the ONNX exporter's ~3 s for resnet18
    export(
        compose_task("export", [f"ckpt_path={quoted(student)}", "format=torchscript"], tmp_path / "export")
    )
    scripted = tmp_path / "export" / "model.pt"
    image = next((digits_root / "val_set").rglob("*.png"))
    found = [
        predict(compose_task("predict", [f"ckpt_path={quoted(path)}", f"input={image}"], tmp_path / name))
        for path, name in ((student, "ckpt"), (scripted, "torchscript"))
    ]
    assert found[0]["results"][0]["pred_class"] == found[1]["results"][0]["pred_class"]


def test_distill_mistakes_are_one_line_before_any_run(trained_run: Path, tmp_path: Path) -> None:
    base = [f"data.root={tmp_path}"]
    message = one_line_error(check_train, compose_train([*base, f"distill.teacher={tmp_path}/x.ckpt"]))
    assert message == f"distill.teacher={tmp_path}/x.ckpt: no such checkpoint (or run or sweep dir)"
    teacher = f"distill.teacher={quoted(trained_run)}"  # a run dir: its best checkpoint
    message = one_line_error(check_train, compose_train([*base, teacher, "distill.alpha=1.5"]))
    assert message == "distill.alpha=1.5: give a number from 0 to 1"
