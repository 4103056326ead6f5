"""Tasks: plain functions taking the composed config and returning their results."""

from lightcls.tasks.evaluate import evaluate
from lightcls.tasks.export import export
from lightcls.tasks.info import info
from lightcls.tasks.predict import predict
from lightcls.tasks.train import train

__all__ = ["evaluate", "export", "info", "predict", "train"]
