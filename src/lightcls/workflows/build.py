"""Objects of a run built from its composed config: the DataModule, plain config data, MixUp/CutMix."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lightcls.data import ImageDataModule
from lightcls.errors import LightclsError


def build_datamodule(cfg: DictConfig) -> ImageDataModule:
    """The DataModule of `cfg.data`; its own argument checks are one-line LightclsErrors."""
    size = cfg.data.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise LightclsError(
            f"data.image_size must be a whole number >= 1 (the side of a square input), got {size}"
        )
    try:
        return instantiate(cfg.data)
    except InstantiationException as err:
        raise err.__cause__ if isinstance(err.__cause__, LightclsError) else err from None


def plain(node: Any) -> Any:
    """A config node as resolved plain Python data (what a checkpoint can hold safely)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def mix_alphas(cfg: DictConfig) -> dict[str, float]:
    """The run's MixUp/CutMix alphas."""
    return {"mixup": cfg.get("mixup", 0.0), "cutmix": cfg.get("cutmix", 0.0)}
