"""Predictors take images in any common form, with one explicit rule for float input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from helpers import one_line_error
from lightcls.inference import CheckpointPredictor, load_predictor
from lightcls.inference.predictor import onnx_providers


def test_float_images_in_0_1_are_scaled_and_others_refused(trained_run: Path) -> None:
    predictor = CheckpointPredictor(trained_run / "checkpoints" / "last.ckpt")
    gray = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    as_uint8 = predictor.to_tensor(gray)
    assert torch.equal(predictor.to_tensor(gray.astype(np.float32) / 255), as_uint8)
    assert torch.equal(predictor.to_tensor(torch.from_numpy(gray)[None].float() / 255), as_uint8)
    assert one_line_error(predictor.to_tensor, gray.astype(np.float32)) == (
        "a float image must be in [0, 1], got 4..248; pass uint8 for 0-255 values"
    )
    probs = predictor.probabilities([as_uint8, as_uint8])
    assert probs.shape == (2, 10) and torch.allclose(probs.sum(1), torch.ones(2))


def test_onnx_providers_fall_back_to_the_cpu_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    everything = ["TensorrtExecutionProvider", *with_cuda]
    assert onnx_providers("cpu", None, everything) == ["CPUExecutionProvider"]
    assert onnx_providers("gpu", None, with_cuda) == with_cuda
    assert onnx_providers("cpu", "tensorrt", everything) == everything
    assert onnx_providers("cpu", "OpenVINOExecutionProvider", ["OpenVINOExecutionProvider", "x"]) == [
        "OpenVINOExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert not caplog.records
    assert onnx_providers("auto", None, cpu_only) == ["CPUExecutionProvider"]  # auto: quietly the CPU
    assert not caplog.records

    assert onnx_providers("gpu", None, cpu_only) == ["CPUExecutionProvider"]
    assert onnx_providers("cpu", "tensorrt", with_cuda) == with_cuda
    assert [r.getMessage() for r in caplog.records] == [
        "device=gpu: this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu); "
        "running on the CPU",
        "provider=tensorrt: this onnxruntime has no TensorrtExecutionProvider; "
        "running on CUDAExecutionProvider",
    ]


def test_an_onnx_model_asked_for_the_gpu_says_so_and_runs(
    exported_onnx: Path, caplog: pytest.LogCaptureFixture
) -> None:
    predictor = load_predictor(exported_onnx, device="gpu", provider="tensorrt")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu here: the CUDA provider is used, nothing to fall back from")
    assert predictor.providers == ["CPUExecutionProvider"]
    assert (
        "provider=tensorrt: this onnxruntime has no TensorrtExecutionProvider or CUDAExecutionProvider "
        in (caplog.text)
    )
    probs = predictor.probabilities([torch.zeros(1, 32, 32, dtype=torch.uint8)])
    assert probs.shape == (1, 10)
