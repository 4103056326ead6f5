"""Build a backbone by name, with the input channels and class count of the data set."""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from lightcls.errors import LightclsError
from lightcls.models.lenet import LeNet5

#: The backbones with a config in conf/model/, and what each is.
MODELS: dict[str, str] = {
    "lenet": "LeNet-5, 62k parameters: the first model for small grayscale images",
    "mobilenet_v2": "MobileNetV2 (torchvision), 3.5M parameters",
    "mobilenet_v3_small": "MobileNetV3-Small (torchvision), 2.5M parameters",
    "resnet18": "ResNet-18 (torchvision), 11.7M parameters",
    "resnet50": "ResNet-50 (torchvision), 25.6M parameters",
    "efficientnet_b0": "EfficientNet-B0 (torchvision), 5.3M parameters",
    "convnext_tiny": "ConvNeXt-Tiny (torchvision), 28.6M parameters",
}


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
    know is one line listing ours."""
    key = name.lower().replace("-", "").replace("_", "")
    for ours in MODELS:
        if key == ours.replace("_", ""):
            return ours
    if key in ALIASES:
        return ALIASES[key]
    raise LightclsError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")


def list_models() -> list[str]:
    """Names usable as `model=NAME` (like MMEdu's `cls.sota()`)."""
    return sorted(MODELS)


def build_model(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """A randomly initialised backbone `name` with `num_classes` outputs and `in_channels` inputs.

    Any torchvision classification model name works; those in `MODELS` are the tested ones.
    """
    if name == "lenet":
        return LeNet5(num_classes=num_classes, in_channels=in_channels)
    known = tvm.list_models(module=tvm)
    if name not in known:
        raise LightclsError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    net = tvm.get_model(name, weights=None, num_classes=num_classes)
    if in_channels != 3:
        _set_in_channels(net, in_channels)
    return net


def _set_in_channels(net: nn.Module, in_channels: int) -> None:
    """Replace the stem convolution (the first Conv2d) with one taking `in_channels` inputs."""
    for path, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            parent_path, _, attr = path.rpartition(".")
            parent = net.get_submodule(parent_path) if parent_path else net
            stem = nn.Conv2d(
                in_channels,
                module.out_channels,
                kernel_size=module.kernel_size,
                stride=module.stride,
                padding=module.padding,
                dilation=module.dilation,
                groups=1,
                bias=module.bias is not None,
            )
            setattr(parent, attr, stem)
            return
    raise LightclsError(f"cannot find the input convolution of {type(net).__name__}")
