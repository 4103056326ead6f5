"""Backbones by name, and pretrained weights adapted to another class count and channel count."""

from __future__ import annotations

import pytest
import torch

from lightcls.errors import LightclsError
from lightcls.models import LeNet5, build_model, list_models


def test_list_models_names_every_architecture() -> None:
    names = list_models()
    assert names[:3] == ["alexnet", "convnext_base", "convnext_large"] and "lenet" in names
    assert "regnet_y_400mf" in names and "vit_b_16" in names and len(names) == 81


def test_unknown_model_names_the_closest() -> None:
    with pytest.raises(LightclsError, match=r"^unknown model 'resnet19' \(did you mean resnet18, "):
        build_model("resnet19", 10)


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 64), (1, 16)])
def test_lenet_takes_any_channels_and_size(channels: int, size: int) -> None:
    assert LeNet5(7, channels)(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_grayscale_stem_for_torchvision_models() -> None:
    net = build_model("resnet18", 3, in_channels=1)
    assert net.conv1.in_channels == 1 and net.fc.out_features == 3


def _feature_map(net: torch.nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """The shape a ResNet's last stage gives (before its pooling)."""
    return tuple(torch.nn.Sequential(*list(net.children())[:-2])(x).shape)


def test_the_small_stem_keeps_small_images_detail() -> None:
    x = torch.zeros(1, 1, 32, 32)
    imagenet, small = (
        build_model("resnet18", 10, 1).eval(),
        build_model("resnet18", 10, 1, stem="small").eval(),
    )
    assert _feature_map(imagenet, x) == (1, 512, 1, 1)  # 7x7 stride 2 and max-pool: 32 px is 8 px by layer1
    assert _feature_map(small, x) == (1, 512, 4, 4)
    assert (small.conv1.kernel_size, small.conv1.stride, small.conv1.in_channels) == ((3, 3), (1, 1), 1)
    assert isinstance(small.maxpool, torch.nn.Identity) and small(x).shape == (1, 10)


def test_stem_auto_and_where_the_small_stem_applies() -> None:
    from helpers import one_line_error
    from lightcls.models.registry import resolve_stem

    assert (
        resolve_stem("resnet18", "auto", 32) == "small"
        and resolve_stem("resnext50_32x4d", "auto", 64) == "small"
    )
    assert resolve_stem("resnet18", "auto", 96) == "imagenet"
    assert resolve_stem("mobilenet_v2", "auto", 32) == "small"  # its stride-2 stem, stride 1
    assert resolve_stem("vit_b_16", "auto", 32) == "imagenet"  # patches, no stem to swap: left as built
    assert one_line_error(resolve_stem, "swin_t", "small", 32) == (
        "model.stem=small: swin_t has no ImageNet stem to swap; the small stem is for these families: "
        "densenet, efficientnet_v2, efficientnet, googlenet, mnasnet, mobilenet_v2, mobilenet_v3, regnet, "
        "resnet, resnext, shufflenet_v2, wide_resnet"
    )
    assert one_line_error(resolve_stem, "lenet", "small", 32).startswith(
        "model.stem=small: lenet has no ImageNet"
    )
    assert (
        one_line_error(resolve_stem, "resnet18", "tiny", 32)
        == "model.stem=tiny: choose one of imagenet, small, auto"
    )
