"""Inference: predictors for a checkpoint, an ONNX or a TorchScript model; inputs; export."""

from lightcls.inference.inputs import check_some_read, collect_inputs, decode_files, predict_files
from lightcls.inference.predictor import (
    CheckpointPredictor,
    ImageInput,
    OnnxPredictor,
    Predictor,
    TorchScriptPredictor,
    contract,
    load_predictor,
    results_from_probs,
)

__all__ = [
    "CheckpointPredictor",
    "ImageInput",
    "OnnxPredictor",
    "Predictor",
    "TorchScriptPredictor",
    "check_some_read",
    "collect_inputs",
    "contract",
    "decode_files",
    "load_predictor",
    "predict_files",
    "results_from_probs",
]
