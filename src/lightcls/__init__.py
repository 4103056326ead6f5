"""lightcls: image-classification experiments on PyTorch Lightning and Hydra."""

from lightcls.errors import LightclsError
from lightcls.models import build_model, list_models

__version__ = "0.1.0"
__all__ = ["LightclsError", "build_model", "list_models", "__version__"]
