"""Int8 quantization of an exported ONNX model with ONNX Runtime's own tools, and what it costs and gains."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from lightcls.data.decode import load_image
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError
from lightcls.inference.predictor import OnnxPredictor, Predictor, _session_options

log = logging.getLogger(__name__)


def describe(method: str, calibration_images: int) -> str:
    """What an int8 export is, in words for its contract."""
    if method == "dynamic":
        return "dynamic, int8 weights, activations quantized at run time"
    return f"static QDQ, per-channel int8 weights, uint8 activations, {calibration_images} calibration images"


def image_batches(files: Sequence[Path], preprocess: Preprocess, size: int = 32) -> Iterator[torch.Tensor]:
    """`files` decoded and preprocessed as at eval (normalized float32 (N, C, H, W)), `size` at a time."""
    transform = preprocess.eval_transform()
    for start in range(0, len(files), size):
        chunk = files[start : start + size]
        yield torch.stack(
            [transform(load_image(f, preprocess.channels, preprocess.resize_side)) for f in chunk]
        )


class ImageCalibration(CalibrationDataReader):
    """ONNX Runtime's calibration input: batches of image files preprocessed as at eval."""

    def __init__(
        self, files: Sequence[Path], preprocess: Preprocess, input_name: str = "input", batch_size: int = 32
    ) -> None:
        self.files, self.preprocess, self.input_name = list(files), preprocess, input_name
        self.batch_size = batch_size
        self.rewind()

    def rewind(self) -> None:
        """Start again from the first image."""
        self.batches = image_batches(self.files, self.preprocess, self.batch_size)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch as ONNX Runtime's input feed, or None after the last."""
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch.numpy()}

    def __len__(self) -> int:
        """Batches in all."""
        return -(-len(self.files) // self.batch_size)


def quantize_onnx(fp32_path: Path, int8_path: Path, calibration_batches: CalibrationDataReader) -> str:
    """Quantize `fp32_path` into `int8_path`: static QDQ calibrated on `calibration_batches`, or, where ONNX
    Runtime cannot, dynamic; return which ("static" or "dynamic")."""
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)  # logs each step at INFO
    with tempfile.TemporaryDirectory(prefix="lightcls-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32_path), str(prepared))  # optimization and shape inference
            quantize_static(
                str(prepared),
                str(int8_path),
                calibration_batches,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,  # ORT's advice for x86 CPUs
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
            return "static"
        except LightclsError:  # an unreadable calibration image
            raise
        except Exception as err:  # noqa: BLE001 - whatever op it cannot handle, dynamic still helps
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            source = prepared if prepared.is_file() else fp32_path
            quantize_dynamic(str(source), str(int8_path), weight_type=QuantType.QInt8)
            log.warning(
                "quantize=int8: static quantization failed (%s); wrote dynamic quantization instead", reason
            )
            return "dynamic"


def compare(
    fp32_path: Path, int8_path: Path, files: Sequence[Path], labels: Sequence[Any] | None
) -> dict[str, Any]:
    """The fp32 and int8 ONNX models (each with its contract) on `files`: how often they agree (top-1, or a
    multi-label model's label set), with `labels` each one's accuracy (top-1, or exact label set), and each
    one's size (MB) and CPU images/s over 32 images (`speed_batch` at a time: 1 where the graph fixes it)."""
    models = {"fp32": OnnxPredictor(fp32_path), "int8": OnnxPredictor(int8_path)}
    predicted: dict[str, list[Any]] = {name: [] for name in models}
    first = None
    for batch in image_batches(files, models["fp32"].preprocess, 32):
        first = batch if first is None else first
        for name, model in models.items():
            predicted[name] += _predictions(model, batch)
    same = [a == b for a, b in zip(predicted["fp32"], predicted["int8"], strict=True)]
    result: dict[str, Any] = {"agreement": sum(same) / len(same)}
    truth = [_truth(label) for label in labels] if labels is not None else None
    for name, guesses in predicted.items():
        right = None if truth is None else sum(g == t for g, t in zip(guesses, truth, strict=True))
        result[f"{name}_accuracy"] = None if right is None else right / len(guesses)
    timed = np.resize(first.numpy(), (32, *first.shape[1:]))  # fewer images: repeated
    result["speed_batch"] = models["fp32"].fixed_batch or len(timed)
    for name, path in (("fp32", fp32_path), ("int8", int8_path)):
        result[f"{name}_mb"] = path.stat().st_size / 2**20
        result[f"{name}_images_per_s"] = onnx_images_per_second(path, timed)
    return result


def _predictions(model: Predictor, batch: torch.Tensor) -> list[Any]:
    """Each image's top-1 label, or a multi-label model's set of labels at its thresholds."""
    out = model.logits(batch).float()
    if not model.multilabel:
        return out.argmax(1).tolist()
    probs = out if model.activation == "sigmoid" else out.sigmoid()
    chosen = probs >= torch.tensor(model.thresholds or [0.5] * probs.shape[1])
    return [frozenset(row.nonzero().flatten().tolist()) for row in chosen]


def _truth(label: Any) -> Any:
    """A sample's label as `_predictions` gives it: an int, or a multi-label sample's set."""
    return label if isinstance(label, int) else frozenset(label)


def onnx_images_per_second(
    path: Path, batch: np.ndarray, warmup: int = 2, runs: int = 10, budget_s: float = 3.0
) -> float:
    """CPU images/s of the ONNX model at `path` through ONNX Runtime on `batch`: the median of up to `runs`
    timed runs (at least 3, then no more once `budget_s` is spent), after `warmup` untimed ones."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), _session_options(), providers=["CPUExecutionProvider"])
    name, first = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]
    step = first if isinstance(first, int) else len(batch)

    def run() -> None:
        for i in range(0, len(batch), step):
            session.run(None, {name: batch[i : i + step]})

    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs and (len(times) < 3 or time.perf_counter() - start < budget_s):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return len(batch) / statistics.median(times)
