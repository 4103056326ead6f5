"""Evaluation: metrics reports from predictions, their files, and confusion-matrix figures."""

from lightcls.evaluation.plots import confusion_matrix_figure, plot_confusion_matrix
from lightcls.evaluation.report import FORMATS, classification_report, write_report

__all__ = [
    "FORMATS",
    "classification_report",
    "confusion_matrix_figure",
    "plot_confusion_matrix",
    "write_report",
]
