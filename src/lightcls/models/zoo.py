"""The model zoo: every torchvision classification architecture and LeNet-5, grouped in families, with the
input sizes each takes and what its published weights are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models import regnet

from lightcls.config.compose import unknown_model
from lightcls.errors import LightclsError


@dataclass(frozen=True)
class Family:
    """One architecture family: its name, torchvision's title, the model names it holds (by prefix), the
    smallest input side its members take, the side they must be a multiple of (0: any), and its stem."""

    name: str
    title: str
    prefixes: tuple[str, ...]
    min_size: int = 1
    multiple: int = 0
    #: where `model.stem=small` applies: the stem convolution's path and the max-pool after it (or None)
    stem: tuple[str, str | None] | None = None

    @property
    def small_stem(self) -> bool:
        """Whether `model.stem=small` applies to the family."""
        return self.stem is not None


#: torchvision's families (as its documentation groups them) and LeNet-5; sizes found by a forward pass
#: at every side (tests/models/test_zoo.py checks them against the builders)
FAMILIES: tuple[Family, ...] = (
    Family("lenet", "LeNet-5", ("lenet",), min_size=10),
    Family("alexnet", "AlexNet", ("alexnet",), min_size=63),
    Family("convnext", "ConvNeXt", ("convnext_",), min_size=32),
    Family("densenet", "DenseNet", ("densenet",), min_size=29, stem=("features.conv0", "features.pool0")),
    Family("efficientnet_v2", "EfficientNetV2", ("efficientnet_v2_",), stem=("features.0.0", None)),
    Family("efficientnet", "EfficientNet", ("efficientnet_b",), stem=("features.0.0", None)),
    Family("googlenet", "GoogLeNet", ("googlenet",), min_size=15, stem=("conv1.conv", "maxpool1")),
    Family("inception", "Inception V3", ("inception_v3",), min_size=75),
    # MaxViT's windows of 7 must tile every stage (1/4 to 1/32 of the input): multiples of 224
    Family("maxvit", "MaxVit", ("maxvit_",), min_size=224, multiple=224),
    Family("mnasnet", "MNASNet", ("mnasnet",), stem=("layers.0", None)),
    Family("mobilenet_v2", "MobileNet V2", ("mobilenet_v2",), stem=("features.0.0", None)),
    Family("mobilenet_v3", "MobileNet V3", ("mobilenet_v3_",), stem=("features.0.0", None)),
    Family("regnet", "RegNet", ("regnet_",), stem=("stem.0", None)),
    Family("resnet", "ResNet", ("resnet",), stem=("conv1", "maxpool")),
    Family("resnext", "ResNeXt", ("resnext",), stem=("conv1", "maxpool")),
    Family("shufflenet_v2", "ShuffleNet V2", ("shufflenet_v2_",), stem=("conv1.0", "maxpool")),
    Family("squeezenet", "SqueezeNet", ("squeezenet",), min_size=21),
    Family("swin", "SwinTransformer", ("swin_",), min_size=4),
    Family("vgg", "VGG", ("vgg",), min_size=32),
    # a ViT is built for one input side (torchvision's image_size), a multiple of its patch
    Family("vit", "VisionTransformer", ("vit_",), min_size=14),
    Family("wide_resnet", "Wide ResNet", ("wide_resnet",), stem=("conv1", "maxpool")),
)

#: members whose smallest input differs from their family's
MIN_SIZE = {"squeezenet1_1": 17}


def zoo_names() -> list[str]:
    """Every model usable as `model=NAME`: torchvision's classification builders and lenet."""
    return sorted([*tvm.list_models(module=tvm), "lenet"])


def family_of(name: str) -> Family:
    """The family of model `name` (a name no family holds is a one-line error with the closest names)."""
    check_name(name)
    return next(f for f in FAMILIES if name.startswith(f.prefixes))


def check_name(name: str) -> None:
    """A model name torchvision (or lightcls) builds; else one line naming the closest ones."""
    names = zoo_names()
    if name in names:
        return
    raise LightclsError(unknown_model(name, names))


def members(family: str) -> list[str]:
    """The models of `family`, smallest (fewest parameters of its published weights) first."""
    names = [n for n in zoo_names() if family_of(n).name == family]
    return sorted(names, key=lambda n: weights_of(n).meta["num_params"] if weights_of(n) else 0)


def patch_size(name: str) -> int:
    """A ViT's patch side, from its name (vit_b_16: 16)."""
    return int(name.rsplit("_", 1)[-1])


def size_rule(name: str) -> tuple[int, int]:
    """The smallest input side model `name` takes and the side it must be a multiple of (0: any)."""
    family = family_of(name)
    if family.name == "vit":
        return patch_size(name), patch_size(name)
    return MIN_SIZE.get(name, family.min_size), family.multiple


def check_input_size(name: str, image_size: int, key: str = "data.image_size") -> None:
    """One line naming the sides that work when model `name` cannot take `image_size` px inputs (`key`)."""
    smallest, multiple = size_rule(name)
    if multiple and image_size % multiple:
        below, above = image_size // multiple * multiple, (image_size // multiple + 1) * multiple
        near = " or ".join(str(s) for s in (below, above) if s >= smallest)
        raise LightclsError(
            f"model={name} takes {key} in multiples of {multiple} (its "
            f"{'patches' if family_of(name).name == 'vit' else 'attention windows'} tile the image); "
            f"got {image_size}, try {near}"
        )
    if image_size < smallest:
        raise LightclsError(
            f"model={name} needs {key} >= {smallest} (its pooling and strides leave nothing "
            f"smaller); got {image_size}"
        )


def builder_kwargs(name: str, image_size: int | None) -> dict[str, Any]:
    """What torchvision's builder for `name` needs besides the class count: the input side of ViT and
    MaxViT, and no auxiliary heads for GoogLeNet and Inception (their training forward would return them)."""
    family = family_of(name).name
    if family == "vit" and image_size:
        return {"image_size": image_size}
    if family == "maxvit" and image_size:
        return {"input_size": (image_size, image_size)}
    if family in ("googlenet", "inception"):
        return {"aux_logits": False, "init_weights": True}
    return {}


def weights_of(name: str) -> Any | None:
    """torchvision's default published weights enum for `name`, or None (lenet)."""
    if name == "lenet":
        return None
    return tvm.get_model_weights(name).DEFAULT


@contextmanager
def on_meta_device() -> Iterator[None]:
    """Build modules without memory or initialisation (sizes and FLOPs of the largest models in ms).

    torchvision's RegNet builders compute block widths with tensors and read them back, which the meta
    device cannot: those few run on the CPU. torch.nn.init's initializers leave a meta tensor as it is
    (they would only run meta kernels, mostly in Python: two thirds of building the whole zoo).
    """
    original = regnet.BlockParams.from_init_params

    def widths_on_cpu(*args: Any, **kwargs: Any) -> Any:
        with torch.device("cpu"):
            return original(*args, **kwargs)

    with ExitStack() as patches:
        patches.enter_context(mock.patch.object(regnet.BlockParams, "from_init_params", widths_on_cpu))
        for name in _INITIALIZERS:
            patches.enter_context(mock.patch.object(nn.init, name, _left_as_is))
        patches.enter_context(torch.device("meta"))
        yield


#: torch.nn.init's in-place initializers (uniform_, kaiming_normal_, trunc_normal_, ...)
_INITIALIZERS = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]


def _left_as_is(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """An initializer that initializes nothing: what it returns, the tensor it was given."""
    return tensor


def first_conv(net: nn.Module) -> tuple[str, nn.Conv2d]:
    """The path and module of `net`'s input convolution (its first Conv2d)."""
    for path, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            return path, module
    raise LightclsError(f"cannot find the input convolution of {type(net).__name__}")
