"""Predictors take images in any common form, with one explicit rule for float input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from helpers import one_line_error
from lightcls.inference import CheckpointPredictor


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
