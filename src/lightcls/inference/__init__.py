"""Inference: predictors for a checkpoint, an ONNX or a TorchScript model; inputs; export."""

from lightcls.inference.inputs import collect_inputs, predict_files
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
    "collect_inputs",
    "contract",
    "load_predictor",
    "predict_files",
    "results_from_probs",
]
