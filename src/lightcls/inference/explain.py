"""Class activation maps: where in an image a trained model looks for a class (pytorch-grad-cam).

pytorch-grad-cam over captum: it has the CAM family (Grad-CAM, Grad-CAM++, XGrad-CAM, Eigen-CAM, Layer-CAM,
HiRes-CAM, Score-CAM) behind one interface for any conv layer of a torchvision backbone, where captum has
Grad-CAM only; its extra weight is opencv-python-headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from lightcls.errors import LightclsError
from lightcls.evaluation.fonts import caption_font
from lightcls.files import PNG
from lightcls.models.zoo import family_of
from lightcls.training import ClassificationModule

#: method name -> pytorch_grad_cam class name
METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "eigencam": "EigenCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "scorecam": "ScoreCAM",
}
#: a CAM layer's output must be at least this many cells a side to say where (1x1 says nothing)
MIN_CELLS = 4


@dataclass
class Explanation:
    """One image's CAM: the heat map (H, W) in [0, 1] at the model's input size, the image the model saw
    (H, W, 3 uint8), the class explained and the top-k (class, score)."""

    cam: np.ndarray
    image: np.ndarray
    target: str
    topk: list[tuple[str, float]]

    @property
    def flat(self) -> bool:
        """True when the map says nothing: no region raises the class score (gradient CAMs keep only the
        positive evidence, so an untrained or unsure model can give all zeros)."""
        return bool(self.cam.max() - self.cam.min() < 1e-6)

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        """The heat map (jet colours) over the image, (H, W, 3) uint8."""
        from pytorch_grad_cam.utils.image import show_cam_on_image

        return show_cam_on_image(
            self.image.astype(np.float32) / 255, self.cam, use_rgb=True, image_weight=alpha
        )


def target_layer(
    net: nn.Module, image_size: int, channels: int, name: str | None = None
) -> tuple[str, nn.Module]:
    """The layer to explain: `name` (a dotted submodule path), else the deepest top-level block of the
    backbone (`features.i` or its children) whose output at `image_size` is still a map of at least
    MIN_CELLS a side (resnet18 at 224: layer4, 7x7; at 64: layer3, 4x4)."""
    if name:
        try:
            return name, net.get_submodule(name)
        except AttributeError:
            blocks = ", ".join(n for n, _ in _blocks(net))
            raise LightclsError(f"layer={name}: no such layer in this model; its blocks: {blocks}") from None
    shapes: dict[str, torch.Size] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, key=key: shapes.__setitem__(key, out.shape))
        for key, module in _blocks(net)
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, channels, image_size, image_size))
    finally:
        for hook in hooks:
            hook.remove()
    maps = [
        key
        for key, module in _blocks(net)
        if len(shapes.get(key, ())) == 4 and min(shapes[key][2:]) >= MIN_CELLS
    ]
    if not maps:
        raise LightclsError(
            f"no layer of this model keeps a {MIN_CELLS}x{MIN_CELLS} map at {image_size}px: "
            "name one with layer="
        )
    return maps[-1], net.get_submodule(maps[-1])


#: families whose blocks give tokens (ViT) or channels-last maps (Swin), which Grad-CAM cannot read as is
TOKEN_FAMILIES = ("vit", "swin")


def explain(
    module: ClassificationModule,
    images: Sequence[torch.Tensor],
    method: str = "gradcam",
    target: str = "pred",
    layer: str | None = None,
    topk: int = 3,
) -> tuple[str, list[Explanation]]:
    """CAMs of uint8 image tensors (any size: resized as the model's contract says) for `target` (`pred`:
    each image's predicted class, or a class name: for a multi-label model, any one of its labels); returns
    the layer used and one Explanation per image."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if method not in METHODS:
        raise LightclsError(f"method={method}: choose one of {', '.join(METHODS)}")
    classes = list(module.classes)
    if target != "pred" and target not in classes:
        raise LightclsError(f"target={target}: not a class of this model; its classes: {', '.join(classes)}")
    name = module.hparams["model"]["name"]
    if family_of(name).name in TOKEN_FAMILIES:
        raise LightclsError(
            f"Grad-CAM needs a layer that gives a feature map; {name}'s blocks give tokens (a transformer): "
            "choose a convolutional model to explain"
        )
    module = module.eval()
    pre = module.preprocess
    layer_name, layer_module = target_layer(module.net, pre.image_size, pre.channels, layer)
    resized = [pre.resize()(image) for image in images]
    batch = torch.stack([pre.normalize(image) for image in resized]).to(next(module.parameters()).device)
    with torch.no_grad():
        probs = module.probabilities(module(batch)).cpu()  # a multi-label model: each label's sigmoid
    labels = probs.argmax(1).tolist() if target == "pred" else [classes.index(target)] * len(images)
    cam_class: Any = getattr(pytorch_grad_cam, METHODS[method])
    with torch.enable_grad(), cam_class(model=module, target_layers=[layer_module]) as cam:
        maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(label) for label in labels])
    scores, indices = probs.topk(max(1, min(topk, len(classes))), dim=1)
    explanations = []
    for i, label in enumerate(labels):
        pairs = zip(indices[i].tolist(), scores[i].tolist(), strict=True)
        explanations.append(
            Explanation(maps[i], _rgb(resized[i]), classes[label], [(classes[j], float(s)) for j, s in pairs])
        )
    return layer_name, explanations


def _blocks(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's blocks in forward order: `features.i` where it has a `features` sequence, else its
    top-level children (resnet: conv1 ... layer4)."""
    features = getattr(net, "features", None)
    if isinstance(features, nn.Sequential):
        return [(f"features.{i}", block) for i, block in enumerate(features)]
    return list(net.named_children())


def _rgb(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) uint8 tensor as an (H, W, 3) uint8 array (grayscale repeated)."""
    array = image.permute(1, 2, 0).cpu().numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def save_picture(item: Explanation, path: Path | BinaryIO, side: int = 256) -> Path | BinaryIO:
    """The image and its heat-map overlay side by side, at least `side` px high, with the top-k below."""
    scale = max(1, round(side / item.image.shape[0]))
    tiles = [Image.fromarray(a) for a in (item.image, item.overlay())]
    tiles = [t.resize((t.width * scale, t.height * scale), Image.Resampling.NEAREST) for t in tiles]
    font = caption_font(14)
    caption = f"{item.target}  |  " + ", ".join(f"{c} {s:.2f}" for c, s in item.topk)
    canvas = Image.new("RGB", (tiles[0].width * 2 + 4, tiles[0].height + 24), (255, 255, 255))
    canvas.paste(tiles[0], (0, 0))
    canvas.paste(tiles[1], (tiles[0].width + 4, 0))
    ImageDraw.Draw(canvas).text((4, tiles[0].height + 4), caption, fill=(0, 0, 0), font=font)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, **PNG)
    return path
