"""The export task: checkpoint -> ONNX or TorchScript + contract json, then a parity check on real images."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console

from lightcls.ckpt import data_provenance, read_checkpoint
from lightcls.data.layout import Layout, read_layout
from lightcls.data.shards import Manifest, has_manifest
from lightcls.errors import LightclsError
from lightcls.files import read_json, write_json
from lightcls.inference import CheckpointPredictor, collect_inputs, load_predictor
from lightcls.inference.export import FORMATS, export_model
from lightcls.workflows.checks import check_export

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export `cfg.ckpt_path` as `cfg.format`; return the files written and the parity figures."""
    check_export(cfg)
    source = CheckpointPredictor(str(cfg.ckpt_path))
    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    meta = {**source.meta, "data": data_provenance(read_checkpoint(str(cfg.ckpt_path)))}
    if cfg.quantize:
        return _export_int8(cfg, source, meta, out_dir / f"{cfg.name}.onnx")
    path, sidecar = export_model(
        source.module.net,
        meta,
        out_dir / f"{cfg.name}{FORMATS[cfg.format]}",
        cfg.format,
        dynamic_batch=bool(cfg.dynamic_batch),
        opset=cfg.opset,
        fp16=bool(cfg.fp16),
    )
    files = _parity_files(cfg, None if cfg.parity_input else _layout(cfg))
    parity = check_parity(
        source, path, files, float(cfg.parity_atol), float(cfg.parity_rtol) if cfg.fp16 else 0.0
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
        f"exported {path} ({precision}, + {sidecar.name}); {_parity_line(parity, source.multilabel)}",
        soft_wrap=True,
    )
    return result


def _parity_line(parity: dict[str, Any], multilabel: bool) -> str:
    """The parity figures in words."""
    return (
        f"parity on {parity['images']} {parity['source']} images: "
        f"max abs {'probability' if multilabel else 'logit'} diff {parity['max_abs_diff']:.3g}, "
        f"same {'labels' if multilabel else 'top-1'} {parity['same_top1']}"
    )


def _export_int8(
    cfg: DictConfig, source: CheckpointPredictor, meta: dict[str, Any], path: Path
) -> dict[str, Any]:
    """ONNX in fp32 (its parity checked), quantized to int8 on calibration images into `path`, then both
    compared on labelled images: accuracy, agreement, size and CPU speed."""
    try:
        from lightcls.inference import quantize
    except ImportError as err:
        raise LightclsError("quantize=int8 needs onnxruntime: pip install 'lightcls[export]'") from err
    layout = _layout(cfg)
    calibration, calibrated_on = _calibration_files(cfg, layout)
    split, files, labels = _compare_samples(cfg, layout, calibration)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{cfg.name}.fp32-") as tmp:
        fp32, fp32_contract = export_model(
            source.module.net, meta, Path(tmp) / path.name, "onnx", bool(cfg.dynamic_batch), cfg.opset
        )
        real = _parity_files(cfg, layout) or calibration[: int(cfg.parity_images)]
        parity = check_parity(source, fp32, real, float(cfg.parity_atol))
        reader = quantize.ImageCalibration(
            calibration, source.preprocess, batch_size=32 if cfg.dynamic_batch else 1
        )
        method = quantize.quantize_onnx(fp32, path, reader)
        described = {"precision": "int8", "quantization": quantize.describe(method, len(calibration))}
        sidecar = write_json(path.with_suffix(".json"), {**read_json(fp32_contract), **described})
        figures = quantize.compare(fp32, path, files, labels)
    what = "labels" if source.multilabel else "top-1"
    if figures["agreement"] < float(cfg.min_agreement):
        path.unlink()
        sidecar.unlink()
        raise LightclsError(
            f"quantize=int8: the int8 model gives fp32's {what} on only {figures['agreement']:.1%} of "
            f"{len(files)} {split} images (min_agreement={cfg.min_agreement}); nothing written: calibrate "
            "on other images (calibration_input=DIR, calibration_images=) or export fp32"
        )
    result = {
        "model": str(path),
        "contract": str(sidecar),
        "format": "onnx",
        "precision": "int8",
        **parity,
        "quantization": method,
        "calibration_images": len(calibration),
        "calibration_source": calibrated_on,
        "compare_split": split,
        "compare_images": len(files),
        **figures,
    }
    Console().print(_int8_lines(result, source.multilabel), soft_wrap=True)
    return result


def _int8_lines(result: dict[str, Any], multilabel: bool) -> str:
    """What an int8 export wrote and its fp32 parity, then int8 against fp32: accuracy (with labels),
    agreement, size, speed."""
    what = "labels" if multilabel else "top-1"
    how = (
        f"static QDQ calibrated on {result['calibration_images']} {result['calibration_source']} images"
        if result["quantization"] == "static"
        else result["quantization"]
    )
    accuracy = (
        f"{'exact labels' if multilabel else 'top-1'} {result['int8_accuracy']:.1%} vs "
        f"{result['fp32_accuracy']:.1%}, "
        if result["int8_accuracy"] is not None
        else ""
    )
    return (
        f"exported {result['model']} (int8: {how}, + {Path(result['contract']).name}); "
        f"fp32 {_parity_line(result, multilabel)}\n"
        f"int8 vs fp32 on {result['compare_images']} {result['compare_split']} images: {accuracy}"
        f"same {what} {result['agreement']:.1%}, {result['int8_mb']:.2f} vs {result['fp32_mb']:.2f} MB, "
        f"{result['int8_images_per_s']:.0f} vs {result['fp32_images_per_s']:.0f} images/s "
        f"(ONNX Runtime, CPU, batch {result['speed_batch']})"
    )


def _calibration_files(cfg: DictConfig, layout: Layout | None) -> tuple[list[Path], str]:
    """`calibration_images` images to set the int8 ranges, and where they are from: `calibration_input`,
    else spread over the training split of the checkpoint's data set, else `parity_input`."""
    key = "calibration_input" if cfg.calibration_input else "parity_input"
    given = cfg.calibration_input or (None if layout is not None else cfg.parity_input)
    if given:
        folder = Path(str(given)).expanduser()
        if not folder.exists():
            raise LightclsError(f"{key}={given}: no such file or folder")
        return _spread(collect_inputs(folder)[0], int(cfg.calibration_images)), key
    if layout is None or not layout.has("train"):
        raise LightclsError(
            f"quantize=int8: {cfg.ckpt_path} names no data set on disk to calibrate on; give "
            "calibration_input=DIR (a folder of images like its training images)"
        )
    return _spread([file for file, _ in layout.splits["train"]], int(cfg.calibration_images)), "train"


def _compare_samples(
    cfg: DictConfig, layout: Layout | None, calibration: list[Path]
) -> tuple[str, list[Path], list[Any] | None]:
    """The images fp32 and int8 are compared on, spread over the val split (else test, else train) of the
    checkpoint's data set, with their labels; without one, `parity_input` or the calibration images."""
    n = int(cfg.compare_images)
    if layout is None:
        given = collect_inputs(Path(str(cfg.parity_input)).expanduser())[0] if cfg.parity_input else None
        return "unlabelled", _spread(given or calibration, n), None
    split = next((s for s in ("val", "test") if layout.has(s)), "train")
    samples = _spread(layout.splits[split], n)
    return split, [file for file, _ in samples], [label for _, label in samples]


def _spread(items: list[Any], n: int) -> list[Any]:
    """`n` of `items` evenly spread over them (all when there are no more)."""
    return [items[i * len(items) // n] for i in range(n)] if len(items) > n else list(items)


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


def _parity_files(cfg: DictConfig, layout: Layout | None) -> list[Path]:
    """A few real images: from `parity_input`, else spread over `layout`, the data set the checkpoint
    records."""
    n = int(cfg.parity_images)
    if cfg.parity_input:
        files, _ = collect_inputs(Path(str(cfg.parity_input)).expanduser())
        return files[:n]
    if layout is None:
        return []
    samples = layout.splits.get("test") or layout.splits.get("val") or layout.splits["train"]
    step = max(1, len(samples) // n)
    return [file for file, _ in samples[::step][:n]]


def _layout(cfg: DictConfig) -> Layout | None:
    """The data set the checkpoint records, split as its run split it; None when it is not on disk."""
    data = data_provenance(read_checkpoint(str(cfg.ckpt_path))) or {}
    if data and has_manifest(data["root"]):  # trained from shards: the folder they were packed from
        data = {**data, "root": Manifest.read(str(data["root"])).source}
    if not data or not Path(data["root"]).is_dir():
        return None
    lists = {split: data.get(f"{split}_list") for split in ("train", "val", "test")}
    return read_layout(
        data["root"],
        data.get("val_fraction", 0.15),
        data.get("split_seed", 0),
        lists,
        data.get("label_delim"),
    )
