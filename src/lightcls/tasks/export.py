"""The export task: checkpoint -> ONNX or TorchScript + contract json, then a parity check on real images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console

from lightcls.ckpt import data_provenance, read_checkpoint
from lightcls.data.layout import read_layout
from lightcls.data.shards import Manifest, has_manifest
from lightcls.errors import LightclsError
from lightcls.inference import CheckpointPredictor, collect_inputs, load_predictor
from lightcls.inference.export import FORMATS, export_model
from lightcls.workflows.checks import check_export

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export `cfg.ckpt_path` as `cfg.format`; return the files written and the parity figures."""
    check_export(cfg)
    source = CheckpointPredictor(str(cfg.ckpt_path))
    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    path, sidecar = export_model(
        source.module.net,
        {**source.meta, "data": data_provenance(read_checkpoint(str(cfg.ckpt_path)))},
        out_dir / f"{cfg.name}{FORMATS[cfg.format]}",
        cfg.format,
        dynamic_batch=bool(cfg.dynamic_batch),
        opset=cfg.opset,
        fp16=bool(cfg.fp16),
    )
    parity = check_parity(
        source, path, _parity_files(cfg), float(cfg.parity_atol), float(cfg.parity_rtol) if cfg.fp16 else 0.0
    )
    precision = "fp16" if cfg.fp16 else "fp32"
    result = {
        "model": str(path),
        "contract": str(sidecar),
        "format": cfg.format,
        "precision": precision,
        **parity,
    }
    Console().print(
        f"exported {path} ({precision}, + {sidecar.name}); "
        f"parity on {parity['images']} {parity['source']} images: "
        f"max abs {'probability' if source.multilabel else 'logit'} diff {parity['max_abs_diff']:.3g}, "
        f"same {'labels' if source.multilabel else 'top-1'} {parity['same_top1']}",
        soft_wrap=True,
    )
    return result


def check_parity(
    source: CheckpointPredictor, exported: Path, files: list[Path], atol: float, rtol: float = 0.0
) -> dict[str, Any]:
    """Exported vs checkpoint logits on `files` (random inputs if none): max abs diff, same top-1.

    The diff allowed is `atol + rtol * max |logit|`; the top-1 must agree on every image whose top-2
    margin exceeds it (a nearer tie may flip within the tolerance).
    """
    target = load_predictor(exported)
    if files:
        images = [source.to_tensor(f) for f in files]
        batch = torch.stack([source.transform(image) for image in images])
        kind = "real"
    else:
        log.warning("no images for the parity check: using random inputs")
        size = source.preprocess.image_size
        batch = torch.randn(4, source.channels, size, size, generator=torch.Generator().manual_seed(0))
        kind = "random"
    with torch.inference_mode():
        expected = source.logits(batch)
        got = target.logits(batch)
    if source.multilabel:
        return _label_parity(exported, expected.sigmoid(), got, source.thresholds or [], atol, kind)
    diff = float((expected - got).abs().max())
    allowed = atol + rtol * float(expected.abs().max())
    top2 = expected.topk(min(2, expected.shape[1]), dim=1).values
    clear = (top2[:, 0] - top2[:, -1]) > allowed
    same = bool((expected.argmax(1) == got.argmax(1))[clear].all())
    if diff > allowed or not same:
        raise LightclsError(
            f"parity check failed for {exported}: max abs logit diff {diff:.3g} (allowed {allowed:.3g}), "
            f"same top-1: {same}"
        )
    return {
        "images": len(batch),
        "source": kind,
        "max_abs_diff": diff,
        "allowed_diff": allowed,
        "same_top1": same,
    }


def _label_parity(
    exported: Path, expected: torch.Tensor, got: torch.Tensor, thresholds: list[float], atol: float, kind: str
) -> dict[str, Any]:
    """A multi-label export's parity: its probabilities against the checkpoint's, and the same labels at
    the thresholds wherever a probability is further than the allowed difference from its threshold."""
    diff = float((expected - got).abs().max())
    limit = torch.tensor(thresholds)
    clear = (expected - limit).abs() > atol
    same = bool(((expected >= limit) == (got >= limit))[clear].all())
    if diff > atol or not same:
        raise LightclsError(
            f"parity check failed for {exported}: max abs probability diff {diff:.3g} (allowed {atol:.3g}), "
            f"same labels: {same}"
        )
    return {
        "images": len(expected),
        "source": kind,
        "max_abs_diff": diff,
        "allowed_diff": atol,
        "same_top1": same,
    }


def _parity_files(cfg: DictConfig) -> list[Path]:
    """A few real images: from `parity_input`, else spread over the data set the checkpoint records."""
    n = int(cfg.parity_images)
    if cfg.parity_input:
        files, _ = collect_inputs(Path(str(cfg.parity_input)).expanduser())
        return files[:n]
    data = data_provenance(read_checkpoint(str(cfg.ckpt_path))) or {}
    if data and has_manifest(data["root"]):  # trained from shards: the folder they were packed from
        data = {**data, "root": Manifest.read(str(data["root"])).source}
    if not data or not Path(data["root"]).is_dir():
        return []
    lists = {split: data.get(f"{split}_list") for split in ("train", "val", "test")}
    layout = read_layout(
        data["root"],
        data.get("val_fraction", 0.15),
        data.get("split_seed", 0),
        lists,
        data.get("label_delim"),
    )
    samples = layout.splits.get("test") or layout.splits.get("val") or layout.splits["train"]
    step = max(1, len(samples) // n)
    return [file for file, _ in samples[::step][:n]]
