"""The input contract: torchvision's resize-then-crop, as a checkpoint and an exported model keep it."""

from __future__ import annotations

import torch

from helpers import compose_train, one_line_error
from lightcls.data.preprocess import Preprocess
from lightcls.workflows.build import build_datamodule

GRAY = {"image_size": 4, "channels": 1, "mean": [0.5], "std": [0.5]}


def test_resize_then_center_crop_as_torchvision_weights_do() -> None:
    image = torch.arange(64, dtype=torch.uint8).view(1, 8, 8)  # rows 0-7, 8 values each
    plain = Preprocess.from_dict(GRAY)
    margin = Preprocess.from_dict({**GRAY, "resize_size": 8, "interpolation": "nearest"})
    assert plain.resize()(image).shape == margin.resize()(image).shape == (1, 4, 4)
    assert torch.equal(margin.resize()(image), image[:, 2:6, 2:6])  # the center, not the whole picture
    assert plain.to_dict() == GRAY  # checkpoints without the keys read and write as before
    assert Preprocess.from_dict(margin.to_dict()) == margin
    assert margin.describe()["resize"] == "short side to 8 (nearest, antialias), then the center 4x4 square"


def test_a_bad_resize_is_one_line() -> None:
    assert one_line_error(Preprocess.from_dict, {**GRAY, "resize_size": 3}) == (
        "preprocess: resize_size must be a whole number >= image_size (4) or null, got 3"
    )
    assert one_line_error(Preprocess.from_dict, {**GRAY, "interpolation": "lanczos"}) == (
        "preprocess: interpolation must be one of bilinear, bicubic, nearest, got 'lanczos'"
    )


def test_a_bad_data_resize_is_one_line_naming_the_key() -> None:
    from lightcls.workflows.checks import check_train

    assert one_line_error(check_train, compose_train(["data.resize_size=10"])) == (
        "data.resize_size must be a whole number >= data.image_size (32) or null, got 10"
    )
    assert one_line_error(check_train, compose_train(["data.interpolation=lanczos"])) == (
        "data.interpolation must be one of bilinear, bicubic, nearest, got 'lanczos'"
    )


def test_pretrained_torchvision_weights_bring_their_preprocessing() -> None:
    run = ["model=efficientnet_b0", "model.pretrained=true", "data=digits"]
    weights = build_datamodule(compose_train(run)).preprocess  # digits: 32 px grayscale, mean/std 0.5
    assert (weights.image_size, weights.resize_size, weights.interpolation) == (224, 256, "bicubic")
    assert weights.mean == (0.449,) and weights.std == (0.226,)  # ImageNet's, averaged for grayscale
    kept = build_datamodule(compose_train([*run, "model.weights_transforms=false"])).preprocess
    assert (kept.image_size, kept.resize_size, kept.mean) == (32, None, (0.5,))
    rgb = build_datamodule(compose_train([*run[:2], "data=folder", "data.root=x"])).preprocess
    assert rgb.mean == (0.485, 0.456, 0.406) and rgb.image_size == 224
