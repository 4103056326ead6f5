"""Build a backbone by name, with the input channels and class count of the data set."""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from lightcls.errors import LightclsError
from lightcls.models.lenet import LeNet5
from lightcls.models.zoo import (
    FAMILIES,
    builder_kwargs,
    check_name,
    family_of,
    first_conv,
    weights_of,
    zoo_names,
)

#: MMEdu's and mmpretrain's spellings of our backbones (matched case-insensitively, '-' and '_' ignored)
ALIASES: dict[str, str] = {
    "mobilenet": "mobilenet_v2",
    "mobilenetv2": "mobilenet_v2",
    "mobilenetv3": "mobilenet_v3_small",
    "mobilenetv3small": "mobilenet_v3_small",
    "resnet": "resnet18",
    "lenet5": "lenet",
    "efficientnet": "efficientnet_b0",
    "convnext": "convnext_tiny",
}


def resolve_model(name: str) -> str:
    """Our name for a backbone written as MMEdu does (`LeNet`, `MobileNet`, `ResNet18`); a name we do not
    know is one line naming the closest ones."""
    key = name.lower().replace("-", "").replace("_", "")
    for ours in zoo_names():
        if key == ours.replace("_", ""):
            return ours
    if key in ALIASES:
        return ALIASES[key]
    check_name(name)
    return name


def list_models() -> list[str]:
    """Names usable as `model=NAME` (like MMEdu's `cls.sota()`): every torchvision classifier and lenet."""
    return zoo_names()


def model_lines() -> dict[str, str]:
    """Each model's family, parameter count (at 1000 classes) and ImageNet top-1 of its weights."""
    lines = {"lenet": "LeNet-5, 62k parameters: the first model for small grayscale images (no weights)"}
    for name in zoo_names():
        weights = weights_of(name)
        if weights is not None:
            top1 = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
            params = weights.meta["num_params"] / 1e6
            title = family_of(name).title
            lines[name] = f"{title}, {params:.1f}M parameters; ImageNet top-1 {top1:.1f} with its weights"
    return lines


#: `model.stem`: torchvision's ImageNet stem, the small-image one, or the small one at AUTO_SMALL px or less
STEMS = ("imagenet", "small", "auto")
AUTO_SMALL = 64


def build_model(
    name: str, num_classes: int, in_channels: int = 3, stem: str = "imagenet", image_size: int | None = None
) -> nn.Module:
    """A randomly initialised backbone `name` with `num_classes` outputs and `in_channels` inputs, for
    `image_size` px inputs where its builder needs the size (ViT, MaxViT); `stem` "small" swaps an ImageNet
    stem for one that keeps small images' detail (see `small_stem`)."""
    if stem not in ("imagenet", "small"):
        raise LightclsError(f"model.stem={stem}: choose one of {', '.join(STEMS)}")
    if name == "lenet":  # built for its channel count; it has no ImageNet stem (small_stem says so)
        lenet = LeNet5(num_classes=num_classes, in_channels=in_channels)
        if stem == "small":
            small_stem(lenet, name, in_channels)
        return lenet
    check_name(name)
    net = tvm.get_model(name, weights=None, num_classes=num_classes, **builder_kwargs(name, image_size))
    if stem == "small":
        small_stem(net, name, in_channels)
    elif in_channels != 3:
        _set_in_channels(net, in_channels)
    return net


def resolve_stem(name: str, stem: str, image_size: int) -> str:
    """`model.stem` as built: auto is small for a model that has one at AUTO_SMALL px or less, else imagenet;
    small on a model without one is a one-line LightclsError."""
    if stem not in STEMS:
        raise LightclsError(f"model.stem={stem}: choose one of {', '.join(STEMS)}")
    if stem == "imagenet":
        return stem
    supported = family_of(name).small_stem
    if stem == "auto":
        return "small" if supported and image_size <= AUTO_SMALL else "imagenet"
    if not supported:
        families = ", ".join(f.name for f in FAMILIES if f.small_stem)
        raise LightclsError(
            f"model.stem=small: {name} has no ImageNet stem to swap; the small stem is for these families: "
            f"{families}"
        )
    return stem


def small_stem(net: nn.Module, name: str, in_channels: int) -> None:
    """The stem's stride-2 convolution (and the max-pool after it, where there is one) become one 3x3
    stride-1 convolution, as CIFAR recipes (mmpretrain's ResNet_CIFAR) build it: a ResNet's 32x32 input
    is 32x32 after it, not 8x8; 4x the compute of every later layer (16x with a max-pool), for that map."""
    spec = family_of(name).stem
    if spec is None:
        raise LightclsError(f"model.stem=small: {name} has no ImageNet stem to swap")
    conv_path, pool_path = spec
    conv = net.get_submodule(conv_path)
    small = nn.Conv2d(in_channels, conv.out_channels, 3, stride=1, padding=1, bias=conv.bias is not None)
    _replace(net, conv_path, small)
    if pool_path is not None:
        _replace(net, pool_path, nn.Identity())


def _replace(net: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    setattr(net.get_submodule(parent_path) if parent_path else net, attr, module)


def _set_in_channels(net: nn.Module, in_channels: int) -> None:
    """Replace the stem convolution (the first Conv2d) with one taking `in_channels` inputs."""
    path, conv = first_conv(net)
    stem = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=1,
        bias=conv.bias is not None,
    )
    _replace(net, path, stem)
