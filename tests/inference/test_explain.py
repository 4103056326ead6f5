"""Class activation maps: a known-good layer for every backbone, and a peak where the classes differ."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import compose_train, one_line_error
from lightcls.data import SplitFolderDataModule
from lightcls.inference.explain import explain, target_layer
from lightcls.models import build_model
from lightcls.tasks import train
from lightcls.training import ClassificationModule
from lightcls.training.quiet import quiet

PREPROCESS = {"image_size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}


@pytest.fixture(scope="module")
def two_class_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes of 48x48 RGB noise, one brighter than the other: 8 + 2 images a class."""
    root = tmp_path_factory.mktemp("cams") / "set"
    rng = np.random.default_rng(0)
    for split, count in (("training_set", 8), ("val_set", 2)):
        for name, low in (("bright", 128), ("dark", 0)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(low, low + 128, (48, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


#: one model of each convolutional design with a config before the whole zoo
MODELS = (
    "lenet",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "convnext_tiny",
)


@pytest.mark.parametrize("name", MODELS)
def test_every_backbone_after_one_tiny_epoch_gets_a_map_of_the_input_size(
    name: str, two_class_set: Path, tmp_path: Path
) -> None:
    L.seed_everything(0, verbose=False)
    datamodule = SplitFolderDataModule(
        str(two_class_set), batch_size=4, num_workers=0, augment=[], **PREPROCESS
    )
    module = ClassificationModule(
        model={"name": name},
        classes=datamodule.classes,
        preprocess=PREPROCESS,
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01, "momentum": 0.9},
    )
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,  # where its metrics.csv goes
    )
    with quiet():  # the warnings the train task silences
        trainer.fit(module, datamodule=datamodule)  # the images resized from 48 to 64 as the contract says
    assert trainer.global_step == 4  # one epoch: 16 images in batches of 4
    image = torch.randint(0, 256, (3, 80, 96), dtype=torch.uint8)  # resized and cropped to 64 first
    layer, (item,) = explain(module, [image])
    assert item.cam.shape == (64, 64) and item.image.shape == (64, 64, 3)
    assert item.overlay().shape == (64, 64, 3)
    assert layer in dict(module.net.named_modules())
    assert item.cam.min() >= 0 and item.cam.max() <= 1
    # Grad-CAM keeps positive evidence only: after 4 steps a BatchNorm backbone in eval mode is still at
    # chance and its map can be all zeros (flagged flat); the gradient-free Eigen-CAM of the same layer
    # shows where the activations are. Grad-CAM itself is checked not flat on trained models (below, and
    # tests/tasks/test_explain.py).
    _, (eigen,) = explain(module, [image], method="eigencam")
    assert eigen.cam.shape == (64, 64) and not eigen.flat


def test_the_layer_keeps_a_map_of_at_least_four_cells() -> None:
    net = build_model("resnet18", 3)
    assert target_layer(net, 224, 3)[0] == "layer4"  # 7x7
    assert target_layer(net, 64, 3)[0] == "layer3"  # layer4 would be 2x2
    assert target_layer(net, 64, 3, "layer2.1")[0] == "layer2.1"
    assert one_line_error(target_layer, net, 64, 3, "layer9").startswith(
        "layer=layer9: no such layer in this model; its blocks: conv1, bn1, relu, maxpool, layer1"
    )


def _region_set(root: Path, n: int = 40) -> Path:
    """Two classes of 32x32 noise that differ only in the top-left 10x10 square: bright or dark."""
    rng = np.random.default_rng(0)
    for split, count in (("training_set", n), ("val_set", 8), ("test_set", 10)):
        for name, value in (("bright", 255), ("dark", 0)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(64, 192, (32, 32), dtype=np.uint8)
                pixels[:10, :10] = value
                Image.fromarray(pixels, "L").save(folder / f"{i}.png")
    return root


def test_the_map_peaks_where_the_classes_differ(tmp_path: Path) -> None:
    root = _region_set(tmp_path / "region")
    overrides = [f"data.root={root}", "data=hand_gray", "data.image_size=32", "data.augment=[]"]
    overrides += ["trainer=cpu", "trainer.max_epochs=6", "logger=none", "model=lenet", "data.batch_size=16"]
    metrics = train(compose_train(overrides, tmp_path / "run"))
    assert metrics["test_top1"] == 1.0
    module = ClassificationModule.from_checkpoint(tmp_path / "run" / metrics["best_ckpt"])
    images = [
        torch.from_numpy(np.array(Image.open(p)))[None] for p in sorted((root / "test_set").rglob("*.png"))
    ]
    _, explanations = explain(module, images)
    peaks = [divmod(int(item.cam.argmax()), 32) for item in explanations]
    inside = sum(y < 14 and x < 14 for y, x in peaks)  # the 10x10 square, give or take a map cell
    assert inside >= 0.9 * len(peaks), peaks
