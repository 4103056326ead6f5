"""Augmentations that draw their random parameters per image of a uint8 batch.

torchvision.transforms.v2 draws one set of parameters per call, so a whole batch would get the same
crop; these draw one per image, so the decode cache augments a batch in one tensor operation.
Each also takes a single (C, H, W) image, and can stand in a `data.augment` list like any v2 transform.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightcls.errors import LightclsError


class RandomCrop(nn.Module):
    """Pad each side by `padding`, then crop a `size` square at a random place, per image."""

    batched = True
    #: the largest padded copy of a whole in-memory set `gather` keeps (CIFAR-10 at padding 4: 240 MB)
    store_max_bytes = 2**30

    def __init__(self, size: int, padding: int = 0, fill: int = 0) -> None:
        super().__init__()
        self.size, self.padding, self.fill = int(size), int(padding), fill
        if self.size < 1 or self.padding < 0:
            raise LightclsError(
                f"RandomCrop(size={size}, padding={padding}): size must be >= 1, padding >= 0"
            )
        self._padded = torch.empty(0)  # the last batch's padded copy: its border is filled once, reused
        self._store: tuple[torch.Tensor, torch.Tensor | None] | None = None  # (a store, its padded copy)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Crops of (N, C, H, W) or (C, H, W) images."""
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        padded = self._pad(batch) if self.padding else batch
        crops = self._crop(padded, torch.arange(len(padded), device=padded.device))
        return crops if images.ndim == 4 else crops[0]

    def gather(self, store: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Crops of the (N, C, H, W) `store`'s images at `index`: the draws and crops of
        `self(store.index_select(0, index))`, cut in one index_select from a padded copy of the whole store
        (made at the first call, up to `store_max_bytes`) instead of a gather, a pad and a crop a batch."""
        padded = self._padded_store(store)
        if padded is None:
            return self(store.index_select(0, index))
        return self._crop(padded, index.to(padded.device))

    def _crop(self, padded: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """A `size` crop at a random place of each of `padded`'s images at `index`."""
        _, channels, height, width = padded.shape
        if height < self.size or width < self.size:
            raise ValueError(f"RandomCrop({self.size}) of a {height}x{width} image (padding included)")
        n = len(index)
        top = torch.randint(0, height - self.size + 1, (n,), device=padded.device)
        left = torch.randint(0, width - self.size + 1, (n,), device=padded.device)
        # every crop is a window of the flat images starting at its image's corner: one index_select over a
        # strided view of all such windows (about 2.5x faster on the CPU than a gather of every pixel)
        flat = padded.contiguous().view(-1)
        plane = height * width
        shape = (channels, self.size, self.size)
        span = (channels - 1) * plane + (self.size - 1) * width + self.size
        windows = flat.as_strided((flat.numel() - span + 1, *shape), (1, plane, width, 1))
        return windows.index_select(0, index * (channels * plane) + top * width + left)

    def _pad(self, batch: torch.Tensor) -> torch.Tensor:
        """`batch` with `padding` pixels of `fill` on each side, in a buffer kept from the last batch of the
        same shape (only the inside is written: ~40 us less a 64-image batch than F.pad's new tensor)."""
        p = self.padding
        n, c, h, w = batch.shape
        buffer, shape = self._padded, (n, c, h + 2 * p, w + 2 * p)
        if buffer.shape != shape or buffer.dtype != batch.dtype or buffer.device != batch.device:
            buffer = torch.full(shape, self.fill, dtype=batch.dtype, device=batch.device)
            self._padded = buffer
        buffer[:, :, p : p + h, p : p + w] = batch
        return buffer

    def _padded_store(self, store: torch.Tensor) -> torch.Tensor | None:
        """`store` padded (itself when `padding` is 0 and it is contiguous), kept while `store` is the one
        asked for; None when a copy would take more than `store_max_bytes`."""
        if not self.padding and store.is_contiguous():
            return store
        if self._store is None or self._store[0] is not store:  # the store itself: an address can be reused
            n, c, h, w = store.shape
            p = self.padding
            size = n * c * (h + 2 * p) * (w + 2 * p) * store.element_size()
            copy = None
            if size <= self.store_max_bytes:
                copy = store.new_full((n, c, h + 2 * p, w + 2 * p), self.fill)
                copy[:, :, p : p + h, p : p + w] = store
            self._store = (store, copy)
        return self._store[1]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a loader worker, a spawned rank) without the copies it keeps: each makes its own."""
        return {**super().__getstate__(), "_padded": torch.empty(0), "_store": None}


class RandomHorizontalFlip(nn.Module):
    """Mirror each image left-right with probability `p`."""

    batched = True

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Flipped (N, C, H, W) or (C, H, W) images."""
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        flip = torch.rand(len(batch), device=batch.device) < self.p
        out = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        return out if images.ndim == 4 else out[0]


class RandomResizedCrop(nn.Module):
    """torchvision's RandomResizedCrop with one crop box drawn per image, resized to a `size` square.

    The boxes follow v2.RandomResizedCrop (`scale` of the area, log-uniform `ratio`, 10 tries, then a
    central crop). On the CPU each box is resized with the same antialiased uint8 bilinear kernel as v2
    (measured 4-7x faster than one batched float `grid_sample` at 128-224 px on one core); on a GPU the
    batch is one `grid_sample`.
    """

    batched = True

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        antialias: bool = True,
    ) -> None:
        super().__init__()
        self.size = int(size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        if not 0 < self.scale[0] <= self.scale[1] <= 1 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise LightclsError(
                f"data.augment: RandomResizedCrop scale must be [low, high] within (0, 1] and ratio "
                f"[low, high] above 0, got scale={list(scale)} ratio={list(ratio)}"
            )
        self.antialias = antialias

    def boxes(self, n: int, height: int, width: int, attempts: int = 10) -> torch.Tensor:
        """(n, 4) crop boxes as (top, left, height, width), one per image."""
        area = torch.empty(n, attempts).uniform_(*self.scale) * (height * width)
        log_ratio = torch.empty(n, attempts).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = torch.exp(log_ratio)
        w = torch.sqrt(area * aspect).round()
        h = torch.sqrt(area / aspect).round()
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = fits.float().argmax(1, keepdim=True)
        w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]
        top = torch.floor(torch.rand(n) * (height - h + 1))
        left = torch.floor(torch.rand(n) * (width - w + 1))
        # no try fits: the central crop of the largest box within `ratio` (as v2)
        fallback = ~fits.any(1)
        if fallback.any():
            fw, fh = float(width), float(height)
            if width / height < self.ratio[0]:
                fh = float(round(width / self.ratio[0]))
            elif width / height > self.ratio[1]:
                fw = float(round(height * self.ratio[1]))
            h[fallback], w[fallback] = fh, fw
            top[fallback], left[fallback] = float((height - fh) // 2), float((width - fw) // 2)
        return torch.stack([top, left, h, w], 1).long()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Crops of (N, C, H, W) or (C, H, W) uint8 (or float) images, each resized to `size`."""
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        n, c, height, width = batch.shape
        boxes = self.boxes(n, height, width)
        if batch.device.type == "cpu":
            out = batch.new_empty(n, c, self.size, self.size)
            for i, (top, left, h, w) in enumerate(boxes.tolist()):
                crop = batch[i : i + 1, :, top : top + h, left : left + w]
                out[i] = F.interpolate(
                    crop, size=(self.size, self.size), mode="bilinear", antialias=self.antialias
                )[0]
        else:
            out = _resample(batch, boxes.to(batch.device), self.size)
        return out if images.ndim == 4 else out[0]


def crops_first(steps: Sequence[Any], image_size: int) -> bool:
    """True when `steps` begin with a RandomResizedCrop to `image_size`: a decoded image can go to it as it
    is (the crop drawn from the whole picture, as torchvision's), with no resize to the input first."""
    return bool(steps) and isinstance(steps[0], RandomResizedCrop) and steps[0].size == image_size


def _resample(batch: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Every image's box resized to a `size` square by one bilinear `grid_sample` over the batch."""
    n, c, height, width = batch.shape
    top, left, h, w = boxes.to(torch.float32).unbind(1)
    theta = torch.zeros(n, 2, 3, device=batch.device)
    theta[:, 0, 0], theta[:, 1, 1] = w / width, h / height
    theta[:, 0, 2], theta[:, 1, 2] = (2 * left + w) / width - 1, (2 * top + h) / height - 1
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    out = F.grid_sample(batch.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(batch.dtype) if batch.dtype == torch.uint8 else out.to(batch.dtype)
