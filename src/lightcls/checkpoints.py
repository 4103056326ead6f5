"""Read checkpoints safely (never unpickling code) and check they fit the run that asks for them."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from lightcls.errors import LightclsError


def load_checkpoint(path: str | Path, what: str = "ckpt_path") -> dict[str, Any]:
    """The dict in `path`, loaded with `torch.load(weights_only=True)`; anything else is one clear line."""
    path = Path(path).expanduser()
    where = f"{what}={path}"
    if not path.is_file():
        raise LightclsError(f"{where}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        detail = f" ({found.group(1)})" if found else ""
        raise LightclsError(
            f"{where}: refused: it holds pickled objects{detail} that loading would run as code; "
            "lightcls only loads tensors and plain data"
        ) from None
    except Exception as err:  # noqa: BLE001 - truncated, zero-length or foreign files read the same
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LightclsError(f"{where}: not a readable checkpoint ({first})") from None
    if not isinstance(obj, dict):
        raise LightclsError(f"{where}: not a checkpoint (holds a {type(obj).__name__}, not a dict)")
    return obj


def describe(hparams: Mapping[str, Any]) -> str:
    """'lenet, 10 classes (zero, one, ...), 1-channel 32px input' for a module's hyperparameters."""
    model = (hparams.get("model") or {}).get("name", "?")
    classes = list(hparams.get("classes") or [])
    pre = hparams.get("preprocess") or {}
    shown = ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")
    return (
        f"{model}, {len(classes)} classes ({shown}), "
        f"{pre.get('channels', '?')}-channel {pre.get('image_size', '?')}px input"
    )


def check_resume(path: str | Path, model: str, classes: Sequence[str], channels: int) -> dict[str, Any]:
    """Load `path` safely and check it holds a lightcls run of `model` on `classes` with `channels` inputs."""
    ckpt = load_checkpoint(path)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, Mapping) or "model" not in hparams or "state_dict" not in ckpt:
        raise LightclsError(
            f"ckpt_path={path}: not a lightcls training checkpoint (no model hyperparameters or weights); "
            "to start from other weights use model.pretrained=PATH"
        )
    held = (
        hparams["model"].get("name"),
        list(hparams.get("classes") or []),
        hparams["preprocess"]["channels"],
    )
    if held != (model, list(classes), channels):
        asked = describe(
            {
                "model": {"name": model},
                "classes": classes,
                "preprocess": {**hparams["preprocess"], "channels": channels},
            }
        )
        raise LightclsError(
            f"ckpt_path={path}: holds {describe(hparams)}, but this run asks for {asked}; "
            "resume with the run's own model and data, or fine-tune with model.pretrained=PATH"
        )
    return ckpt
