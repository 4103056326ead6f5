"""Read a lightcls checkpoint safely (weights only) and rebuild its model from it alone (SPEC §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightcls.errors import LightclsError

#: Hyperparameters a lightcls checkpoint must carry to rebuild its model.
REQUIRED_HPARAMS = ("model", "classes", "preprocess")


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint at `path` as plain data, loaded with `weights_only=True`; one-line errors naming it."""
    path = Path(str(path)).expanduser()
    if path.is_dir():
        raise LightclsError(
            f"{key}={path}: is a folder; pass a .ckpt file (e.g. {path}/checkpoints/last.ckpt)"
        )
    if not path.is_file():
        raise LightclsError(f"{key}={path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt, unsafe or foreign files all read the same to a user
        raise LightclsError(
            f"{key}={path}: not a lightcls checkpoint (cannot be read as a weights-only torch file)"
        ) from err
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(ckpt.get("state_dict") if isinstance(ckpt, dict) else None, dict) or not (
        isinstance(hparams, dict) and all(k in hparams for k in REQUIRED_HPARAMS)
    ):
        raise LightclsError(
            f"{key}={path}: not a lightcls checkpoint (no state_dict with model, classes and preprocess "
            "hyperparameters; a plain state dict can be used as model.pretrained=... for training)"
        )
    return ckpt


def load_module(path: str | Path, key: str = "ckpt_path") -> Any:
    """The `ClassificationModule` of a checkpoint, on the CPU in eval mode."""
    from lightcls.module import ClassificationModule

    ckpt = read_checkpoint(path, key)
    hparams = ckpt["hyper_parameters"]
    module = ClassificationModule(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise LightclsError(f"{key}={path}: its weights do not fit its model ({first})") from err
    return module.eval()


def contract(hparams: dict[str, Any]) -> dict[str, Any]:
    """The input contract a deployed model needs: model name, class names and preprocessing."""
    pre = hparams["preprocess"]
    return {
        "model": hparams["model"]["name"],
        "classes": list(hparams["classes"]),
        "preprocess": {
            "image_size": int(pre["image_size"]),
            "channels": int(pre["channels"]),
            "mean": [float(m) for m in pre["mean"]],
            "std": [float(s) for s in pre["std"]],
            "resize": "short side to image_size (bilinear, antialias), then center crop to a square",
            "scale": "uint8 / 255, then (x - mean) / std per channel",
            "color": "L (grayscale)" if int(pre["channels"]) == 1 else "RGB",
            "layout": "NCHW float32",
        },
        "output": "logits (softmax for probabilities)",
    }
