"""Write a checkpoint's network as ONNX or TorchScript, with its preprocessing contract beside it."""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError
from lightcls.files import write_json

log = logging.getLogger(__name__)
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def export_model(
    net: nn.Module,
    meta: dict[str, Any],
    path: Path,
    fmt: str,
    dynamic_batch: bool = True,
    opset: int | None = None,
    fp16: bool = False,
) -> tuple[Path, Path]:
    """Export `net` (eval mode, CPU) to `path` in `fmt`; write `meta` as `path`.json; return both paths.

    `fp16` stores weights and computes in float16 (half the file); input and output stay float32.
    """
    if fmt not in FORMATS:
        raise LightclsError(f"format={fmt}: choose one of {', '.join(FORMATS)}")
    pre = Preprocess.from_dict(meta["preprocess"])
    example = torch.zeros(2 if dynamic_batch else 1, pre.channels, pre.image_size, pre.image_size)
    net = net.eval().cpu()
    if fp16:
        net = Float16(copy.deepcopy(net)).eval()
    if float(meta.get("temperature", 1.0)) != 1.0:  # a calibrated model's logits are divided by it
        net = Scaled(net, 1.0 / float(meta["temperature"])).eval()
    multilabel = meta.get("task") == "multilabel"
    if multilabel:  # a deployed multi-label model answers each label's probability
        net = Sigmoid(net).eval()
        meta = {**meta, "output": "sigmoid probabilities, one per label", "activation": "sigmoid"}
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        _export_onnx(net, example, path, dynamic_batch, opset, "scores" if multilabel else "logits")
    else:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit", FutureWarning)  # deprecated: said in export.yaml
            traced = torch.jit.trace(net, example)
        traced.save(str(path))
    sidecar = path.with_suffix(".json")
    contract = {
        **meta,
        "format": fmt,
        "file": path.name,
        "precision": "fp16" if fp16 else "fp32",
        "input_name": "input",
        "input_shape": ["batch" if dynamic_batch else 1, pre.channels, pre.image_size, pre.image_size],
    }
    write_json(sidecar, contract)
    return path, sidecar


class Sigmoid(nn.Module):
    """`net` followed by a sigmoid: a multi-label model's exported output is each label's probability."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).sigmoid()


class Scaled(nn.Module):
    """`net`'s output times `factor`: a calibrated model's logits divided by its temperature in the graph."""

    def __init__(self, net: nn.Module, factor: float) -> None:
        super().__init__()
        self.net = net
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.factor


class Float16(nn.Module):
    """`net` in float16 between float32 input and output, so a deployed model's interface does not change."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def _export_onnx(
    net: nn.Module,
    example: torch.Tensor,
    path: Path,
    dynamic_batch: bool,
    opset: int | None,
    output: str = "logits",
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
    # a failed conversion to another opset is logged with its traceback, then kept at torch's own opset:
    # checked below and said in one line instead
    for name in ("onnxscript.version_converter", "torch.onnx._internal.exporter._compat"):
        logging.getLogger(name).setLevel(logging.CRITICAL if opset else logging.WARNING)
    torch.onnx.export(
        net,
        (example,),
        str(path),
        input_names=["input"],
        output_names=[output],
        dynamic_shapes=dynamic,
        dynamo=True,
        external_data=False,
        verbose=False,
        **kwargs,
    )
    if opset:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        written = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if written != opset:
            path.unlink(missing_ok=True)
            raise LightclsError(
                f"opset={opset}: torch.onnx cannot convert this model to opset {opset} (it wrote opset "
                f"{written}); leave opset unset or give {written} or higher"
            )
