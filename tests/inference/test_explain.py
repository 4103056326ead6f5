"""Class activation maps: a known-good layer for every backbone, and a peak where the classes differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import compose_train, one_line_error
from lightcls.inference.explain import explain, target_layer
from lightcls.models import MODELS, build_model
from lightcls.tasks import train
from lightcls.training import ClassificationModule

PREPROCESS = {"image_size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}


@pytest.mark.parametrize("name", MODELS)
def test_every_backbone_gets_a_map_of_the_input_size_that_is_not_flat(name: str) -> None:
    torch.manual_seed(0)
    module = ClassificationModule(model={"name": name}, classes=["a", "b", "c"], preprocess=PREPROCESS)
    batch = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)  # one tiny training step first
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    torch.nn.functional.cross_entropy(
        module(module.preprocess.normalize(batch)), torch.tensor([0, 1, 2, 0])
    ).backward()
    optimizer.step()
    image = torch.randint(0, 256, (3, 80, 96), dtype=torch.uint8)  # resized and cropped to 64 first
    layer, (item,) = explain(module, [image])
    assert item.cam.shape == (64, 64) and item.image.shape == (64, 64, 3)
    assert item.overlay().shape == (64, 64, 3)
    assert layer in dict(module.net.named_modules())
    # a gradient map of a barely trained model may be flat (all evidence negative: efficientnet_b0 here);
    # the gradient-free Eigen-CAM of the same layer always varies
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
