"""Embeddings: a checkpoint model's penultimate features (the input of its classification layer), as unit
vectors whose inner product is their cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as nnf

from lightcls.ckpt import read_checkpoint, weights_digest
from lightcls.errors import LightclsError
from lightcls.files import write_text
from lightcls.inference.inputs import decode_files
from lightcls.inference.predictor import CheckpointPredictor, Predictor
from lightcls.models.head import head

#: what `lightcls-predict embed=true` writes beside predictions.json
EMBEDDINGS_FILE, EMBEDDED_FILES = "embeddings.npy", "embeddings.txt"


def check_embeddable(ckpt: str | Path) -> None:
    """One line when `ckpt` is an exported model (.onnx, or a TorchScript .pt with its .json): those give
    class scores only."""
    path = Path(str(ckpt))
    if path.suffix.lower() == ".onnx" or (
        path.suffix.lower() == ".pt" and path.with_suffix(".json").is_file()
    ):
        raise _exported(ckpt)


def checkpoint_predictor(predictor: Predictor, ckpt: Any) -> CheckpointPredictor:
    """`predictor` when it runs a `.ckpt`; an exported model is one line."""
    if not isinstance(predictor, CheckpointPredictor):
        raise _exported(ckpt)
    return predictor


def _exported(ckpt: Any) -> LightclsError:
    return LightclsError(
        f"ckpt_path={ckpt}: an exported model has no embeddings (class scores only); pass the .ckpt it was "
        "exported from"
    )


@torch.inference_mode()
def embed(predictor: CheckpointPredictor, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2-normalised float32 embeddings (N, D) of uint8 image tensors, resized as `probabilities` does."""
    resized = torch.stack([predictor.resize(image) for image in images])
    features: list[torch.Tensor] = []
    hook = head(predictor.module.net).register_forward_pre_hook(lambda _m, args: features.append(args[0]))
    try:
        predictor.logits(predictor.preprocess.normalize(resized))
    finally:
        hook.remove()
    return unit_rows(features[0])


def unit_rows(features: torch.Tensor) -> torch.Tensor:
    """(N, D) float32 rows of length 1 from a head's input: (N, D), or a map (N, C, H, W) averaged over
    H and W (squeezenet's final convolution sees one)."""
    if features.ndim == 4:
        features = nnf.adaptive_avg_pool2d(features, 1)
    return nnf.normalize(features.flatten(1).float().cpu(), dim=1)


def embed_files(
    predictor: CheckpointPredictor, files: list[Path], batch_size: int, skipped: list[dict[str, str]]
) -> tuple[np.ndarray, list[Path]]:
    """Embeddings (N, D) float32 of the files that decode, in batches, with their paths; each one that
    does not is added to `skipped`."""
    vectors, kept = [], []
    for start in range(0, len(files), batch_size):
        images, names = decode_files(predictor, files[start : start + batch_size], skipped)
        if images:
            vectors.append(embed(predictor, images).numpy())
            kept += names
    dim = vectors[0].shape[1] if vectors else 0
    return (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)), kept


def write_embeddings(
    predictor: Predictor, ckpt: Any, files: list[Path], batch_size: int, out_dir: Path
) -> dict[str, str]:
    """`embed=true` of lightcls-predict: embeddings.npy (N, D) float32 and embeddings.txt (each row's file,
    one a line) in `out_dir`; returns their paths."""
    vectors, kept = embed_files(checkpoint_predictor(predictor, ckpt), files, batch_size, [])
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / EMBEDDINGS_FILE, vectors)
    write_text(out_dir / EMBEDDED_FILES, "".join(f"{file}\n" for file in kept))
    return {"embeddings": str(out_dir / EMBEDDINGS_FILE), "embedded_files": str(out_dir / EMBEDDED_FILES)}


def checkpoint_digest(path: str | Path) -> str:
    """The SHA-256 of a checkpoint's network weights: what its embeddings depend on (a temperature or
    thresholds written into it later change no embedding)."""
    state = read_checkpoint(path)["state_dict"]
    return weights_digest({key: value for key, value in state.items() if key.startswith("net.")})
