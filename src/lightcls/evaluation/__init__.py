"""Evaluation: metrics reports from predictions, their files, and confusion-matrix figures."""

from lightcls.evaluation.metrics import FORMATS, classification_metrics, write_metrics
from lightcls.evaluation.plots import confusion_matrix_picture, plot_confusion_matrix

__all__ = [
    "FORMATS",
    "classification_metrics",
    "confusion_matrix_picture",
    "plot_confusion_matrix",
    "write_metrics",
]
