"""Read checkpoints safely (never unpickling code) and check they fit the run that asks for them."""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from lightcls.errors import LightclsError
from lightcls.files import read_json

#: Hyperparameters a lightcls checkpoint must carry to rebuild its model.
REQUIRED_HPARAMS = ("model", "classes", "preprocess")
#: Where Lightning keeps the DataModule's hyperparameters: the data set's provenance (SPEC §4).
DATA_KEY = "datamodule_hyper_parameters"
#: The SHA-256 of a checkpoint's weights, written with them and checked on every load.
DIGEST_KEY = "weights_sha256"


def weights_digest(state_dict: Mapping[str, Any]) -> str:
    """SHA-256 over the tensors of `state_dict`: each key, dtype, shape and raw bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key]
        if not isinstance(tensor, torch.Tensor):
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def seal(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """`checkpoint` with the digest of its weights added (for a dict holding a `state_dict`)."""
    state = checkpoint.get("state_dict")
    return {**checkpoint, DIGEST_KEY: weights_digest(state)} if isinstance(state, Mapping) else checkpoint


def load_checkpoint(path: str | Path, what: str = "ckpt_path") -> dict[str, Any]:
    """The dict in `path`, loaded with `torch.load(weights_only=True)`; anything else is one clear line."""
    path = best_of_sweep(Path(path).expanduser())
    where = f"{what}={path}"
    if path.is_dir():
        raise LightclsError(f"{where}: is a folder; pass a .ckpt file (e.g. {path}/checkpoints/last.ckpt)")
    if not path.is_file():
        raise LightclsError(f"{where}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise LightclsError(
                f"{where}: refused: it holds pickled objects ({found.group(1)}) that loading would run as "
                "code; lightcls only loads tensors and plain data"
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(err))
        detail = reason.group(1).strip() if reason else str(err).strip().splitlines()[0]
        raise LightclsError(f"{where}: not a readable checkpoint ({detail})") from None
    except Exception as err:  # noqa: BLE001 - truncated, zero-length or foreign files read the same
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LightclsError(f"{where}: not a readable checkpoint ({first})") from None
    if not isinstance(obj, dict):
        raise LightclsError(f"{where}: not a checkpoint (holds a {type(obj).__name__}, not a dict)")
    saved, state = obj.get(DIGEST_KEY), obj.get("state_dict")
    if saved is not None and isinstance(state, Mapping) and weights_digest(state) != saved:
        raise LightclsError(
            f"{where}: its weights do not match the digest written with them (the file was changed or "
            "damaged after it was saved); use another checkpoint of the run or train again"
        )
    return obj


def best_of_sweep(path: Path) -> Path:
    """For a sweep dir (its `summary.json`, best run first): that run's best checkpoint; else `path`."""
    summary = path / "summary.json"
    if not (path.is_dir() and summary.is_file()):
        return path
    rows = read_json(summary, "a sweep's summary")
    best = next((row.get("best_ckpt") for row in rows if row.get("best_ckpt")), None)
    if best is None:
        raise LightclsError(f"{path}: a sweep none of whose runs kept a best checkpoint")
    return Path(best)


def model_file(path: Path) -> Path:
    """The model a path names: a file as it is; a run dir's best (else last) checkpoint; a sweep or search
    dir's best run's best checkpoint."""
    path = best_of_sweep(path)
    if path.is_dir() and (path / "metrics.json").is_file():
        metrics = read_json(path / "metrics.json", "a run's results")
        path = path / (metrics.get("best_ckpt") or metrics.get("last_ckpt") or "checkpoints/last.ckpt")
    return path


def read_checkpoint(path: str | Path, what: str = "ckpt_path") -> dict[str, Any]:
    """A lightcls checkpoint (weights and the hyperparameters that rebuild its model), loaded safely."""
    ckpt = load_checkpoint(path, what)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(ckpt.get("state_dict"), dict) or not (
        isinstance(hparams, Mapping) and all(k in hparams for k in REQUIRED_HPARAMS)
    ):
        raise LightclsError(
            f"{what}={Path(path).expanduser()}: not a lightcls checkpoint (no state_dict with model, classes "
            "and preprocess hyperparameters); to start from other weights use model.pretrained=PATH"
        )
    return ckpt


def data_provenance(ckpt: Mapping[str, Any]) -> dict[str, Any] | None:
    """The settings of the data set a checkpoint was trained on (root, name, split, preprocess), if kept."""
    data = ckpt.get(DATA_KEY)
    return dict(data) if isinstance(data, Mapping) and data.get("root") else None


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
    ckpt = read_checkpoint(path)
    if "optimizer_states" not in ckpt or "loops" not in ckpt:
        raise LightclsError(
            f"ckpt_path={path}: holds weights only (no optimizer or loop state to resume, e.g. a published "
            f"checkpoint); to start a new run from these weights use model.pretrained={path}"
        )
    hparams = ckpt["hyper_parameters"]
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
