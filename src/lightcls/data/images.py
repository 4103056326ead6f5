"""Decode image files into uint8 tensors, and the Dataset over (file, label) pairs."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from lightcls.errors import LightclsError


def load_image(path: str | Path, channels: int) -> torch.Tensor:
    """Decode `path` (first frame, EXIF rotation applied) to a (channels, H, W) uint8 tensor."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.seek(0)
                img = ImageOps.exif_transpose(img)
                img = _to_mode(img, "L" if channels == 1 else "RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise LightclsError(f"{path}: refused: {_bomb(err)}") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise LightclsError(f"{path}: cannot decode image ({err})") from None
    return F.pil_to_tensor(img)


def decode_check(path: str | Path) -> dict[str, Any]:
    """Fully decode `path` as training would: {'width', 'height', 'mode'} (as stored), or {'error': line}."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mode, (width, height) = img.mode, img.size
        load_image(path, 3)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return {"error": f"{path}: refused: {_bomb(err)}"}
    except LightclsError as err:
        return {"error": str(err)}
    except (OSError, ValueError, SyntaxError) as err:
        return {"error": f"{path}: cannot decode image ({err})"}
    return {"width": width, "height": height, "mode": mode}


def _bomb(err: Exception) -> str:
    """Pillow's decompression-bomb message as one line naming the limit."""
    return (
        f"{err} (a decompression bomb? the limit is Pillow's Image.MAX_IMAGE_PIXELS="
        f"{Image.MAX_IMAGE_PIXELS} pixels)"
    )


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert to 'L' or 'RGB': 16-bit scaled to 8-bit, transparency flattened onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        high = 65535 if img.mode.startswith("I;16") or np.asarray(img).max() > 255 else 255
        img = Image.fromarray((np.asarray(img, dtype=np.float64) * 255 / high).round().astype(np.uint8))
    if img.mode == "P" and "transparency" in img.info or img.mode in ("PA", "LA", "RGBA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert(mode)


class ImageDataset(Dataset):
    """(image tensor, label) for each (file, label) sample, decoded on access."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        channels: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = load_image(path, self.channels)
        return (self.transform(image) if self.transform else image), label


class TensorImageDataset(Dataset):
    """(image, label) from uint8 images already decoded and resized (the decode cache).

    A DataLoader fetches a whole batch at once (`__getitems__`): one gather from the cache, and
    augmentations that all draw per image (lightcls.data.augment) applied to the batch in one go.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: Sequence[int],
        augment: Sequence[Callable[[torch.Tensor], torch.Tensor]] = (),
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = list(labels)
        self.augment = list(augment)
        self.batched = all(getattr(t, "batched", False) for t in self.augment)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].clone()
        for transform in self.augment:
            image = transform(image)
        return image, self.labels[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        if not self.batched:
            return [self[i] for i in indices]
        images = self.images[torch.as_tensor(indices)]
        for transform in self.augment:
            images = transform(images)
        return list(zip(images, (self.labels[i] for i in indices), strict=True))
