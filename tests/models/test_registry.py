"""Backbones by name, and pretrained weights adapted to another class count and channel count."""

from __future__ import annotations

import pytest
import torch

from lightcls.errors import LightclsError
from lightcls.models import LeNet5, build_model, list_models


def test_list_models_names_the_configured_backbones() -> None:
    assert list_models() == [
        "convnext_tiny",
        "efficientnet_b0",
        "lenet",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "resnet18",
        "resnet50",
    ]


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(LightclsError, match=r"^unknown model 'resnet19'; choose one of: convnext_tiny, "):
        build_model("resnet19", 10)


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 64), (1, 16)])
def test_lenet_takes_any_channels_and_size(channels: int, size: int) -> None:
    assert LeNet5(7, channels)(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_grayscale_stem_for_torchvision_models() -> None:
    net = build_model("resnet18", 3, in_channels=1)
    assert net.conv1.in_channels == 1 and net.fc.out_features == 3
