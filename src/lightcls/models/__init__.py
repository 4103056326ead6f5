"""Backbones: torchvision's classification builders plus our LeNet-5."""

from lightcls.models.lenet import LeNet5
from lightcls.models.pretrained import load_pretrained
from lightcls.models.registry import build_model, list_models, model_lines, resolve_model

__all__ = ["LeNet5", "build_model", "list_models", "load_pretrained", "model_lines", "resolve_model"]
