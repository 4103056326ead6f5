"""Load pretrained weights into a backbone, adapting what differs (class count, input channels)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from lightcls.ckpt import load_checkpoint
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)


def load_pretrained(net: nn.Module, name: str, source: bool | str) -> dict[str, list[str]]:
    """Load `source` (True: torchvision's published weights; a path: a state dict or a lightcls
    checkpoint) into `net`; return the keys loaded, adapted and skipped."""
    state = _torchvision_weights(name) if source is True else _file_weights(Path(str(source)))
    own = net.state_dict()
    loaded, adapted, skipped = {}, [], []
    for key, value in state.items():
        target = own.get(key)
        if target is None:
            continue
        if target.shape == value.shape:
            loaded[key] = value
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
        "pretrained weights from %s: loaded %d of %d tensors; adapted (input channels): %s; "
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
