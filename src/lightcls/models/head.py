"""The classification layer of a backbone: what `build_model` sized for the class count."""

from __future__ import annotations

from torch import nn

from lightcls.errors import LightclsError


def head(net: nn.Module) -> nn.Module:
    """The final classification layer of `net`: its last Linear (resnet `fc`, vgg's `classifier[-1]`, vit
    `heads.head`, swin `head`, lenet's `classifier[-1]`, ...), or its last Conv2d where no Linear follows
    it (squeezenet's 1x1 `classifier[1]`, whose input is a feature map)."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    if not layers:
        raise LightclsError(f"cannot find the classification layer of {type(net).__name__}")
    return layers[-1]
