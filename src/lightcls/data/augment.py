"""Augmentations that draw their random parameters per image of a uint8 batch.

torchvision.transforms.v2 draws one set of parameters per call, so a whole batch would get the same
crop; these draw one per image, so the decode cache augments a batch in one tensor operation.
Each also takes a single (C, H, W) image, and can stand in a `data.augment` list like any v2 transform.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RandomCrop(nn.Module):
    """Pad each side by `padding`, then crop a `size` square at a random place, per image."""

    batched = True

    def __init__(self, size: int, padding: int = 0, fill: int = 0) -> None:
        super().__init__()
        self.size, self.padding, self.fill = int(size), int(padding), fill

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Crops of (N, C, H, W) or (C, H, W) images."""
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        p = self.padding
        padded = F.pad(batch, (p, p, p, p), value=self.fill) if p else batch
        n, _, height, width = padded.shape
        if height < self.size or width < self.size:
            raise ValueError(f"RandomCrop({self.size}) of a {height}x{width} image (padding included)")
        top = torch.randint(0, height - self.size + 1, (n, 1), device=padded.device)
        left = torch.randint(0, width - self.size + 1, (n, 1), device=padded.device)
        offsets = torch.arange(self.size, device=padded.device)
        # one flat gather per image plane: about 4x faster on the CPU than indexing rows and columns
        flat = (top + offsets)[:, :, None] * width + (left + offsets)[:, None, :]
        index = flat.view(n, 1, -1).expand(n, padded.shape[1], -1)
        crops = padded.flatten(2).gather(2, index).view(n, -1, self.size, self.size)
        return crops if images.ndim == 4 else crops[0]


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
