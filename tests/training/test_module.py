"""The LightningModule: uint8 in, normalized in one place; GPU switches inert on the CPU; plain keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import compose_train, one_line_error
from lightcls.tasks import train
from lightcls.training import ClassificationModule
from lightcls.training.module import TRAIN_METRICS_EVERY

GRAY = {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]}


def test_batches_are_normalized_from_uint8_and_float_batches_are_refused() -> None:
    module = ClassificationModule({"name": "lenet"}, list("ab"), GRAY)
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 4, 4)
    x, y = module.on_after_batch_transfer((images, torch.tensor([0, 1])), 0)
    assert x.dtype == torch.float32 and x[0].unique().tolist() == [-1.0] and x[1].unique().tolist() == [1.0]
    message = one_line_error(module.on_after_batch_transfer, (images.float() / 255, torch.tensor([0, 1])), 0)
    assert message.startswith("expected uint8 images (0-255), got torch.float32")


def test_gpu_switches_are_ignored_cleanly_on_the_cpu(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder(mode="RGB", per_class={"training_set": 16, "val_set": 2})
    metrics = train(
        compose_train(
            [
                f"data.root={root}",
                "data=folder",
                "data.image_size=16",
                "data.batch_size=4",
                "trainer=cpu",
                "trainer.max_epochs=1",
                "model.channels_last=true",
                "logger=none",
            ],
            tmp_path / "run",
        )
    )
    assert metrics["train_images_per_second"] > 0  # 12 batches, the first 5 excluded
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    stem = state["net.features.0.weight"]
    assert stem.shape[1] == 3 and stem.is_contiguous()  # a 3-channel stem would not be, in channels_last


def test_compiled_training_saves_plain_keys() -> None:
    module = ClassificationModule({"name": "lenet", "compile": True}, list("0123456789"), GRAY)
    module.on_fit_start()
    assert all(
        key.startswith(("net.features.", "net.classifier.")) or key == "temperature"
        for key in module.state_dict()
    )


@pytest.mark.parametrize(
    ("name", "stem"), [("lenet", "imagenet"), ("resnet18", "imagenet"), ("resnet18", "small")]
)
def test_a_module_rebuilds_from_its_checkpoint_alone(name: str, stem: str, tmp_path: Path) -> None:
    module = ClassificationModule({"name": name, "stem": stem}, list("abc"), GRAY)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    loaded = ClassificationModule.from_checkpoint(path)
    x = torch.randn(2, 1, 32, 32)
    assert not loaded.training and torch.equal(loaded.eval()(x), module.eval()(x))


class _Training:
    """The bit of a Trainer the batch hook reads: training, with no DataModule."""

    training = True
    datamodule = None
    log_every_n_steps = 0


def test_mixup_and_cutmix_train_on_soft_targets_while_top1_counts_hard_labels() -> None:
    torch.manual_seed(0)
    module = ClassificationModule({"name": "lenet"}, list("abcd"), GRAY, mix={"mixup": 0.4, "cutmix": 1.0})
    module._trainer = _Training()
    images = torch.randint(0, 256, (32, 1, 32, 32), dtype=torch.uint8)
    labels = torch.arange(32) % 4
    x, y, soft = module.on_after_batch_transfer((images, labels), 0)
    assert torch.equal(y, labels) and soft.shape == (32, 4)
    assert torch.allclose(soft.sum(1), torch.ones(32)) and ((soft > 0).sum(1) == 2).all()  # two classes mixed
    module.training_step((x, y, soft), 0)
    logits = module(x)
    loss = module.training_step((x, y, soft), 0)
    assert torch.isclose(loss, torch.nn.functional.cross_entropy(logits, soft))
    assert not torch.isclose(loss, torch.nn.functional.cross_entropy(logits, y))
    hard_top1 = (logits.argmax(1) == y).float().mean()
    assert torch.isclose(module.train_scores()[1], hard_top1)  # both steps saw the same batch
    # validation batches (the trainer not training) are never mixed
    module._trainer.training = False
    assert len(module.on_after_batch_transfer((images, labels), 0)) == 2


def test_the_epoch_train_loss_and_top1_count_every_image_once() -> None:
    """Steps of 3 images and then 1 (an epoch's partial last batch): each image weighs the same, also in the
    loss, and steps past the metrics' update interval are counted."""
    torch.manual_seed(0)
    module = ClassificationModule({"name": "lenet"}, list("ab"), GRAY)
    module._trainer = _Training()
    losses, correct, images = [], [], 0
    for size in [3] * (TRAIN_METRICS_EVERY + 1) + [1]:
        x, y = torch.randn(size, 1, 32, 32), torch.randint(0, 2, (size,))
        with torch.no_grad():
            logits = module(x)
            losses.append(module.training_step((x, y), 0) * size)
        correct.append((logits.argmax(1) == y).sum())
        images += size
    loss, top1 = module.train_scores()
    assert torch.isclose(loss, torch.stack(losses).sum() / images)
    assert torch.isclose(top1, torch.stack(correct).sum() / images)


def test_a_negative_mix_alpha_is_one_line() -> None:
    message = one_line_error(ClassificationModule, {"name": "lenet"}, list("ab"), GRAY, mix={"cutmix": -1})
    assert message == "cutmix must be a number >= 0 (its Beta alpha; 0: off), got -1"


def test_class_weights_weight_the_loss() -> None:
    module = ClassificationModule({"name": "lenet"}, list("ab"), GRAY, class_weights=[0.25, 4.0])
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    expected = torch.nn.functional.cross_entropy(logits, y, weight=torch.tensor([0.25, 4.0]))
    assert torch.isclose(module.criterion(logits, y), expected)


def test_mixup_mixes_multi_hot_targets_and_bce_trains_on_them() -> None:
    torch.manual_seed(0)
    module = ClassificationModule(
        {"name": "lenet"}, list("abcd"), GRAY, mix={"mixup": 1.0}, task="multilabel"
    )
    module._trainer = _Training()
    images = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0]] * 2, dtype=torch.float32)
    x, y, soft = module.on_after_batch_transfer((images, labels), 0)
    assert torch.equal(y, labels)
    # torchvision's MixUp blends each image's multi-hot row with its neighbour's, by the batch's one lambda
    lam = float(soft[0, 3])  # image 0 has d, its neighbour (the last) has not
    assert torch.allclose(soft, lam * labels + (1 - lam) * labels.roll(1, 0))
    logits = module(x)
    loss = module.training_step((x, y, soft), 0)
    assert torch.isclose(loss, torch.nn.functional.binary_cross_entropy_with_logits(logits, soft))


def test_the_asymmetric_loss_is_bce_without_focusing_and_weighs_easy_negatives_less() -> None:
    from lightcls.training.module import build_loss

    logits = torch.tensor([[3.0, -2.0, 0.5], [-1.0, 2.0, -4.0]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    plain = build_loss({"name": "asl", "gamma_neg": 0, "gamma_pos": 0, "clip": 0}, "multilabel", None, 0.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert torch.isclose(plain(logits, target), bce)
    assert build_loss({"name": "asl"}, "multilabel", None, 0.0)(logits, target) < bce
    message = one_line_error(build_loss, {"name": "asl"}, "multiclass", None, 0.0)
    assert message.startswith("loss=asl is for multi-label data (several labels per image)")
