"""lightcls: image-classification experiments on PyTorch Lightning and Hydra."""

from typing import Any

from lightcls.errors import LightclsError

__version__ = "0.2.0"
__all__ = ["Classifier", "LightclsError", "build_model", "list_models", "__version__"]


def __getattr__(name: str) -> Any:
    """`from lightcls import Classifier, build_model, list_models`, imported on first use (so `import
    lightcls`, and a command that stops at a config mistake, never wait for torch and Lightning)."""
    if name == "Classifier":
        from lightcls.api import Classifier

        return Classifier
    if name in ("build_model", "list_models"):
        from lightcls import models

        return getattr(models, name)
    raise AttributeError(f"module 'lightcls' has no attribute {name!r}")
