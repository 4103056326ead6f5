"""What to classify: images from a file, a folder or a list, decoded and run in batches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from lightcls.data.layout import IMAGE_SUFFIXES
from lightcls.errors import LightclsError
from lightcls.inference.predictor import Predictor, results_from_probs

log = logging.getLogger(__name__)
#: Suffixes of a list file: one image path per line (relative to the list's folder).
LIST_SUFFIXES = (".txt", ".lst")


def collect_inputs(path: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """Image files to classify from an image, a folder (recursive) or a list file; and what was skipped."""
    if not path.exists():
        raise LightclsError(f"input={path}: no such file or folder")
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        base = path.parent
        files = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            name = line.strip().split(" ")[0] if line.strip() else ""
            if not name or name.startswith("#"):
                continue
            file = (base / name).resolve()
            if not file.is_file():
                raise LightclsError(f"{path}:{number}: file {file} does not exist")
            files.append(file)
        if not files:
            raise LightclsError(f"input={path}: the list names no images")
        return files, []
    if path.is_file():
        return [path.resolve()], []
    files, skipped = [], []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if file.suffix.lower() in IMAGE_SUFFIXES:
            files.append(file.resolve())
        else:
            skipped.append({"file": str(file.resolve()), "reason": "not an image file"})
    if not files:
        raise LightclsError(
            f"input={path}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return files, skipped


def decode_files(
    predictor: Predictor, files: list[Path], skipped: list[dict[str, str]]
) -> tuple[list[torch.Tensor], list[Path]]:
    """The files that decode, as the predictor's image tensors, with their paths; each one that does not
    is warned about and added to `skipped`, not fatal."""
    images, names = [], []
    for file in files:
        try:
            images.append(predictor.to_tensor(file))
            names.append(file)
        except LightclsError as err:
            log.warning("skipped: %s", err)
            skipped.append({"file": str(file), "reason": "cannot decode image"})
    return images, names


def check_some_read(given: Any, files: list[Path], read: int, skipped: list[dict[str, str]]) -> None:
    """One line when none of `files` could be decoded, naming the first failure."""
    if read:
        return
    unreadable = [s for s in skipped if s["reason"] == "cannot decode image"]
    first = f"{unreadable[0]['file']}: {unreadable[0]['reason']}" if unreadable else "nothing read"
    raise LightclsError(f"input={given}: none of its {len(files)} image file(s) could be read ({first})")


def predict_files(
    predictor: Predictor,
    files: list[Path],
    batch_size: int,
    topk: int,
    tta: str = "none",
    min_score: float | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Results for the files that decode, in batches (`tta`, `min_score`: as `Predictor.probabilities` and
    `results_from_probs` take them); the ones that do not are reported, not fatal."""
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for start in range(0, len(files), batch_size):
        images, names = decode_files(predictor, files[start : start + batch_size], skipped)
        if images:
            probs = predictor.probabilities(images, tta)
            answers = results_from_probs(probs, predictor.classes, topk, predictor.thresholds, min_score)
            for file, result in zip(names, answers, strict=True):
                results.append({"file": str(file), **result})
    return results, skipped
