"""Training: the LightningModule, the optimizer/schedule builder and the callbacks a run uses."""

from lightcls.training.module import ClassificationModule

__all__ = ["ClassificationModule"]
