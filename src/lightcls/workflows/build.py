"""Objects of a run built from its composed config: the DataModule, plain config data, MixUp/CutMix."""

from __future__ import annotations

import logging
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from lightcls.data import ImageDataModule
from lightcls.errors import LightclsError
from lightcls.models.zoo import weights_of

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig) -> ImageDataModule:
    """The DataModule of `cfg.data` (with torchvision's weights, their preprocessing: `weights_data`); its
    own argument checks are one-line LightclsErrors."""
    data = weights_data(cfg)
    size = data.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise LightclsError(
            f"data.image_size must be a whole number >= 1 (the side of a square input), got {size}"
        )
    try:
        return instantiate(data)
    except InstantiationException as err:
        raise err.__cause__ if isinstance(err.__cause__, LightclsError) else err from None


def weights_data(cfg: DictConfig) -> DictConfig:
    """`cfg.data`, where the run starts from torchvision's weights (`model.pretrained=true`, and
    `model.weights_transforms` on), with their preprocessing: crop side, resize side, interpolation, mean
    and std (averaged over colours for grayscale data)."""
    model = cfg.get("model") or {}
    if model.get("pretrained") is not True or not model.get("weights_transforms", True):
        return cfg.data
    weights = weights_of(str(model.name))
    if weights is None:
        return cfg.data
    found = weights.transforms()
    gray = cfg.data.get("channels") == 1
    contract = {
        "image_size": int(found.crop_size[0]),
        "resize_size": int(found.resize_size[0]),
        "interpolation": found.interpolation.value,
        "mean": [sum(found.mean) / 3] if gray else list(found.mean),
        "std": [sum(found.std) / 3] if gray else list(found.std),
    }
    changed = {k: v for k, v in contract.items() if cfg.data.get(k) != v}
    if not changed:
        return cfg.data
    with open_dict(cfg):  # the whole config, so that ${data.image_size} in data.augment follows
        data = OmegaConf.merge(cfg, {"data": contract}).data
    log.info(
        "model.pretrained=true: the preprocessing of torchvision's %s weights: %s "
        "(model.weights_transforms=false keeps the data config's)",
        str(weights).split(".", 1)[-1],
        ", ".join(f"data.{k}={v}" for k, v in changed.items()),
    )
    return data


def plain(node: Any) -> Any:
    """A config node as resolved plain Python data (what a checkpoint can hold safely)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def mix_alphas(cfg: DictConfig) -> dict[str, float]:
    """The run's MixUp/CutMix alphas."""
    return {"mixup": cfg.get("mixup", 0.0), "cutmix": cfg.get("cutmix", 0.0)}
