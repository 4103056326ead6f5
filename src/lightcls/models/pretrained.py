"""Load pretrained weights into a backbone, adapting what differs (class count, input channels)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.vision_transformer import interpolate_embeddings

from lightcls.ckpt import load_checkpoint
from lightcls.errors import LightclsError
from lightcls.models.zoo import family_of, patch_size

log = logging.getLogger(__name__)


def load_pretrained(net: nn.Module, name: str, source: bool | str) -> dict[str, list[str]]:
    """Load `source` (True: torchvision's published weights; a path: a state dict or a lightcls
    checkpoint) into `net`; return the keys loaded, adapted and skipped."""
    state = _torchvision_weights(name) if source is True else _file_weights(Path(str(source)))
    own = net.state_dict()
    state = _from_openmmlab(state, own, source)
    loaded, adapted, skipped = {}, [], []
    for key, value in state.items():
        target = own.get(key)
        if target is None:
            continue
        if target.shape == value.shape:
            loaded[key] = value
        elif key == "encoder.pos_embedding" and family_of(name).name == "vit":
            loaded[key] = _resized_positions(value, target, patch_size(name))
            adapted.append(key)
        elif _is_stem_mismatch(target, value):
            loaded[key] = _adapt_stem(value, target.shape[1])
            adapted.append(key)
        else:
            skipped.append(key)
    if not loaded:
        raise LightclsError(
            f"model.pretrained={source}: none of its weights fit model {name!r} "
            "(is it a checkpoint of another architecture?)"
        )
    net.load_state_dict(loaded, strict=False)
    missing = sorted(set(own) - set(loaded))
    log.info(
        "pretrained weights from %s: loaded %d of %d tensors; adapted (input channels, ViT positions): %s; "
        "new (shape differs, e.g. the classifier head): %s",
        "torchvision" if source is True else source,
        len(loaded),
        len(own),
        ", ".join(adapted) or "none",
        ", ".join(missing) or "none",
    )
    return {"loaded": sorted(loaded), "adapted": adapted, "skipped": skipped, "missing": missing}


def _torchvision_weights(name: str) -> dict[str, torch.Tensor]:
    """Download (or take from the torch hub cache) torchvision's default weights for `name`."""
    try:
        weights = tvm.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as err:
        raise LightclsError(
            f"model.pretrained=true: torchvision publishes no weights for {name!r}; "
            "pass model.pretrained=/path/to/weights.pth instead"
        ) from err
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # noqa: BLE001 - any download failure reads the same to a user
        raise LightclsError(
            f"model.pretrained=true: could not get torchvision's {weights} weights ({err}); "
            "download them elsewhere and pass model.pretrained=/path/to/weights.pth"
        ) from err


def _file_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torchvision `.pth` file or a lightcls `.ckpt`, loaded without unpickling code."""
    if not path.is_file():
        raise LightclsError(f"model.pretrained={path}: no such file")
    obj = load_checkpoint(path, what="model.pretrained")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = {k.removeprefix("net."): v for k, v in obj["state_dict"].items()}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LightclsError(f"model.pretrained={path}: not a state dict or a lightcls checkpoint")
    return obj


def _from_openmmlab(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], source: object
) -> dict[str, torch.Tensor]:
    """An mmpretrain / MMEdu state dict (`backbone.*`, `head.*`) in torchvision's names: by name where the
    backbone's names are torchvision's (ResNet), else by order where every shape agrees (MobileNetV2, ...);
    the head's weight and bias become the last layer's. Other state dicts pass through."""
    if not any(k.startswith("backbone.") for k in state):
        return state
    body = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    head = [v for k, v in state.items() if k.startswith("head.")]
    own_keys = list(own)
    own_body, own_head = own_keys[:-2], own_keys[-2:]  # every built-in backbone ends in a Linear
    if set(body) <= set(own_body):
        mapped, how = dict(body), "by name"
    else:
        pairs = list(zip(body.items(), own_body, strict=False))
        if len(body) != len(own_body) or any(v.shape != own[k].shape for (_, v), k in pairs):
            raise LightclsError(
                f"model.pretrained={source}: an OpenMMLab checkpoint whose backbone does not fit this model "
                f"({len(body)} backbone tensors, the model has {len(own_body)}); is it another architecture?"
            )
        mapped, how = {k: v for (_, v), k in pairs}, "by order"
    if len(head) == 2:
        mapped.update(zip(own_head, head, strict=True))
    log.info(
        "model.pretrained=%s: an mmpretrain/MMEdu checkpoint, %d tensors mapped %s", source, len(mapped), how
    )
    return mapped


def _resized_positions(value: torch.Tensor, target: torch.Tensor, patch: int) -> torch.Tensor:
    """A ViT's position embeddings for another input side, interpolated as torchvision does it."""
    side = math.isqrt(target.shape[1] - 1) * patch
    return interpolate_embeddings(side, patch, {"encoder.pos_embedding": value})["encoder.pos_embedding"]


def _is_stem_mismatch(target: torch.Tensor, value: torch.Tensor) -> bool:
    """True for a conv weight that differs only in its number of input channels."""
    return (
        target.ndim == 4
        and value.ndim == 4
        and target.shape[0] == value.shape[0]
        and target.shape[2:] == value.shape[2:]
    )


def _adapt_stem(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB stem to grayscale: sum over colours; grayscale to RGB: spread over colours."""
    gray = weight.sum(dim=1, keepdim=True)
    return gray if in_channels == 1 else gray.repeat(1, in_channels, 1, 1) / in_channels
