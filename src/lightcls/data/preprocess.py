"""The preprocessing contract of a model (size, channels, mean, std) and its torchvision v2 pipelines."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import v2

from lightcls.errors import LightclsError

#: torchvision's resize interpolations a contract may name
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@functools.cache
def _affine(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Per-channel 1 / (255 std) and -mean / std on `device`, made once: what `normalize` uses."""
    deviation = torch.tensor(std, dtype=torch.float64)
    scale = 1 / (255 * deviation)
    shift = -torch.tensor(mean, dtype=torch.float64) / deviation
    return tuple(t.to(torch.float32).view(-1, 1, 1).to(device) for t in (scale, shift))


@dataclass(frozen=True)
class Preprocess:
    """What a model's input is: `image_size` square, `channels` (1: grayscale, 3: RGB), and the
    per-channel `mean` and `std` applied after scaling uint8 to [0, 1]; an image's short side is resized to
    `resize_size` (None: `image_size`) with `interpolation`, then center-cropped to `image_size`.

    Images stay uint8 (resized by `resize`) until `normalize` turns them into the model's float input:
    the one place where that happens, in training, evaluation and prediction alike.
    """

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize_size: int | None = None
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise LightclsError(f"preprocess: channels must be 1 or 3, got {self.channels}")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise LightclsError(
                f"preprocess: image_size must be a whole number >= 1, got {self.image_size!r}"
            )
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) != self.channels:
                raise LightclsError(
                    f"preprocess: {key} has {len(values)} values for {self.channels} channel(s): "
                    f"{list(values)}"
                )
        if any(s <= 0 for s in self.std):
            raise LightclsError(f"preprocess: std must be > 0, got {list(self.std)}")
        size = self.resize_size
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or size < self.image_size
        ):
            raise LightclsError(
                f"preprocess: resize_size must be a whole number >= image_size ({self.image_size}) or null, "
                f"got {size!r}"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise LightclsError(
                f"preprocess: interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Preprocess:
        """The contract from plain data (a checkpoint's hyperparameters, an exported model's json)."""
        try:
            resize = values.get("resize_size")
            return cls(
                image_size=int(values["image_size"]),
                channels=int(values["channels"]),
                mean=tuple(float(m) for m in values["mean"]),
                std=tuple(float(s) for s in values["std"]),
                resize_size=None if resize is None else int(resize),
                interpolation=str(values.get("interpolation", "bilinear")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LightclsError(f"preprocess: not a valid contract ({err!r}): {dict(values)}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as a checkpoint stores it (the resize keys only where they are not the default)."""
        plain: dict[str, Any] = {
            "image_size": self.image_size,
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
        }
        if self.resize_size not in (None, self.image_size):
            plain["resize_size"] = self.resize_size
        if self.interpolation != "bilinear":
            plain["interpolation"] = self.interpolation
        return plain

    @property
    def resize_side(self) -> int:
        """The short side an image is resized to before the center crop."""
        return self.resize_size or self.image_size

    @property
    def mode(self) -> str:
        """The PIL colour mode images are decoded to: 'L' or 'RGB'."""
        return "L" if self.channels == 1 else "RGB"

    def resize(self) -> v2.Compose:
        """uint8 to uint8: the short side to `resize_side` (antialiased), then the center square."""
        mode = v2.InterpolationMode(self.interpolation)
        return v2.Compose(
            [v2.Resize(self.resize_side, interpolation=mode, antialias=True), v2.CenterCrop(self.image_size)]
        )

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (one or a batch, any device) to the model's normalized float32 input."""
        if images.dtype != torch.uint8:
            raise LightclsError(
                f"expected uint8 images (0-255), got {images.dtype}; convert float images in [0, 1] with "
                "(x * 255).round().to(torch.uint8) first"
            )
        scale, shift = _affine(tuple(self.mean), tuple(self.std), images.device)
        return images.to(torch.float32).mul_(scale).add_(shift)  # (x / 255 - mean) / std in two passes

    def eval_transform(self) -> v2.Compose:
        """Deterministic: `resize`, then `normalize` (what prediction and export parity use)."""
        return v2.Compose([self.resize(), v2.Lambda(self.normalize)])

    def bytes_per_image(self) -> int:
        """Bytes one resized uint8 image takes."""
        return self.channels * self.image_size**2

    def describe(self) -> dict[str, Any]:
        """The contract in words, for a deployed model's json."""
        return {
            **self.to_dict(),
            "resize": f"short side to {self.resize_side} ({self.interpolation}, antialias), then the center "
            f"{self.image_size}x{self.image_size} square",
            "scale": "uint8 / 255, then (x - mean) / std per channel",
            "color": "L (grayscale)" if self.channels == 1 else "RGB",
            "layout": "NCHW float32",
        }
