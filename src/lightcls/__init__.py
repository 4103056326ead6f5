"""lightcls: image-classification experiments on PyTorch Lightning and Hydra."""

from lightcls.errors import LightclsError
from lightcls.models import build_model, list_models

__version__ = "0.1.0"
__all__ = ["Classifier", "LightclsError", "build_model", "list_models", "__version__"]


def __getattr__(name: str) -> object:
    """`from lightcls import Classifier` without importing Lightning for `import lightcls`."""
    if name == "Classifier":
        from lightcls.api import Classifier

        return Classifier
    raise AttributeError(f"module 'lightcls' has no attribute {name!r}")
