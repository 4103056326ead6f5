"""Decoding a batch of encoded images on the device (nvJPEG on a GPU) for data.device_decode."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import torch
from PIL import Image

from lightcls.data.augment import crops_first
from lightcls.data.decode import ImageReadMode, decode_bytes, decode_jpeg
from lightcls.data.preprocess import Preprocess


def decode_images(
    encoded: Sequence[bytes],
    preprocess: Preprocess,
    steps: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    device: torch.device | str,
) -> torch.Tensor:
    """A uint8 batch on `device` from encoded images: JPEGs decoded there in one batched call
    (torchvision's decode_jpeg; nvJPEG on a GPU), others (and JPEGs with an EXIF rotation) by
    decode_bytes on the CPU; then each resized (or given to a leading RandomResizedCrop), then `steps`."""
    channels, size = preprocess.channels, preprocess.image_size
    images: list[torch.Tensor | None] = [None] * len(encoded)
    jpegs = [i for i, data in enumerate(encoded) if data[:2] == b"\xff\xd8" and decode_jpeg is not None]
    on_device = [i for i in jpegs if not _rotated(encoded[i])]
    if on_device:
        mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
        raw = [torch.frombuffer(bytearray(encoded[i]), dtype=torch.uint8) for i in on_device]
        for i, image in zip(on_device, decode_jpeg(raw, mode=mode, device=device), strict=True):
            images[i] = image
    for i, image in enumerate(images):
        if image is None:
            images[i] = decode_bytes(encoded[i], channels, size, f"image {i} of the batch").to(device)
    steps = list(steps)
    first = steps.pop(0) if crops_first(steps, size) else preprocess.resize()
    out = [first(image) for image in images]
    if all(getattr(s, "batched", False) for s in steps):
        batch = torch.stack(out)
        for step in steps:
            batch = step(batch)
        return batch
    for step in steps:
        out = [step(image) for image in out]
    return torch.stack(out)


def _rotated(jpeg: bytes) -> bool:
    """True when a JPEG's EXIF says to rotate or mirror it (the batched decode leaves that out)."""
    with Image.open(io.BytesIO(jpeg)) as img:
        return img.getexif().get(0x0112, 1) != 1
