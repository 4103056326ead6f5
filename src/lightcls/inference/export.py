"""Write a checkpoint's network as ONNX or TorchScript, with its preprocessing contract beside it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def export_model(
    net: nn.Module,
    meta: dict[str, Any],
    path: Path,
    fmt: str,
    dynamic_batch: bool = True,
    opset: int | None = None,
) -> tuple[Path, Path]:
    """Export `net` (eval mode, CPU) to `path` in `fmt`; write `meta` as `path`.json; return both paths."""
    if fmt not in FORMATS:
        raise LightclsError(f"format={fmt}: choose one of {', '.join(FORMATS)}")
    pre = Preprocess.from_dict(meta["preprocess"])
    example = torch.zeros(2 if dynamic_batch else 1, pre.channels, pre.image_size, pre.image_size)
    net = net.eval().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        _export_onnx(net, example, path, dynamic_batch, opset)
    else:
        with torch.no_grad():
            traced = torch.jit.trace(net, example)
        traced.save(str(path))
    sidecar = path.with_suffix(".json")
    contract = {
        **meta,
        "format": fmt,
        "file": path.name,
        "input_name": "input",
        "input_shape": ["batch" if dynamic_batch else 1, pre.channels, pre.image_size, pre.image_size],
    }
    sidecar.write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
    return path, sidecar


def _export_onnx(
    net: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, opset: int | None
) -> None:
    """torch.onnx's dynamo exporter (needs onnxscript: `pip install lightcls[export]`)."""
    try:
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise LightclsError("format=onnx needs onnx and onnxscript: pip install 'lightcls[export]'") from err
    dynamic = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    kwargs = {"opset_version": opset} if opset else {}
    for name in ("onnx_ir", "onnxscript"):  # their optimizer passes log every step at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.onnx.export(
        net,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes=dynamic,
        dynamo=True,
        external_data=False,
        verbose=False,
        **kwargs,
    )
