"""The eval task: a checkpoint on a split of a data set -> eval.json, confusion-matrix PNG, predictions,
and (report=true) report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from lightcls.workflows.evaluation import evaluate_checkpoint
from lightcls.workflows.page import build_report


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt_path` on `cfg.split` of its data set; write and return the metrics (and the page).

    A `.ckpt`'s images go through the DataModule the checkpoint was trained with (its saved settings, the
    data check included) and `trainer.test`, as at the end of training; an exported `.onnx` or TorchScript
    model runs in its own runtime over the same DataModule. The metrics come from those predictions.
    """
    metrics = evaluate_checkpoint(cfg)
    if cfg.report:
        Console().print(f"-> {build_report(Path(cfg.paths.output_dir).resolve())}", soft_wrap=True)
    return metrics
