"""The explain task: class-activation heat maps over images, for a checkpoint's predicted or named class."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from lightcls.ckpt import best_of_sweep
from lightcls.errors import LightclsError
from lightcls.files import write_json
from lightcls.inference import CheckpointPredictor, check_some_read, collect_inputs, decode_files
from lightcls.inference.explain import explain, save_picture
from lightcls.workflows.checks import check_explain

log = logging.getLogger(__name__)


def explain_images(cfg: DictConfig) -> dict[str, Any]:
    """CAMs of `cfg.input` for `cfg.ckpt_path`: one picture per image in `<save_dir>/cam/`, and
    explanations.json (file, class explained, top-k, the heat map's peak); returns that summary."""
    check_explain(cfg)
    ckpt = best_of_sweep(Path(str(cfg.ckpt_path)).expanduser())
    if ckpt.suffix.lower() in (".onnx", ".pt"):
        raise LightclsError(f"ckpt_path={ckpt}: an exported model has no gradients to map; give its .ckpt")
    files, skipped = collect_inputs(Path(str(cfg.input)).expanduser())
    predictor = CheckpointPredictor(ckpt, device=str(cfg.device))
    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    results, layer = [], None
    read = 0
    for start in range(0, len(files), int(cfg.batch_size)):
        images, chunk = decode_files(predictor, files[start : start + int(cfg.batch_size)], skipped)
        read += len(images)
        if not images:
            continue
        layer, explanations = explain(
            predictor.module, images, str(cfg.method), str(cfg.target), cfg.layer, int(cfg.topk)
        )
        for file, item in zip(chunk, explanations, strict=True):
            picture = save_picture(item, out_dir / "cam" / f"{file.parent.name}__{file.stem}.png")
            results.append(_result(file, picture, item))
    check_some_read(cfg.input, files, read, skipped)
    flat = sum(r["flat"] for r in results)
    if flat:
        log.warning(
            "%d of %d %s maps are flat (no region of layer %s raises the class score): try method=eigencam "
            "(no gradients) or another layer=",
            *(flat, len(results), cfg.method, layer),
        )
    summary = {
        "ckpt": str(ckpt),
        "method": cfg.method,
        "layer": layer,
        "results": results,
        "skipped": skipped,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "explanations.json", summary)
    Console().print(
        f"{cfg.method} of layer {layer} for {len(results)} images -> {out_dir / 'cam'}", soft_wrap=True
    )
    for item in skipped:
        Console().print(f"skipped {item['file']}: {item['reason']}", soft_wrap=True)
    return summary


def _result(file: Path, picture: Path, item: Any) -> dict[str, Any]:
    """One image's entry of explanations.json: its picture, the class explained, top-k and the map's peak."""
    return {
        "file": str(file),
        "picture": str(picture),
        "target": item.target,
        "topk": [{"class": c, "score": s} for c, s in item.topk],
        "peak_yx": list(divmod(int(item.cam.argmax()), item.cam.shape[1])),
        "flat": item.flat,
    }
