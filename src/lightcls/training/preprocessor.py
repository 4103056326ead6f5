"""The model's batch preprocessor: a batch from the loader to the model's input, on the model's device.

After mmpretrain's `data_preprocessor`: the one place where a batch is decoded (device JPEG decoding),
augmented on the device, normalized (uint8 -> float, the model's `Preprocess`), mixed (MixUp/CutMix) and laid
out (channels_last). The DataModule hands it its device work explicitly (`DeviceWork`).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2

from lightcls.data.base import DeviceWork
from lightcls.data.preprocess import Preprocess


class BatchPreprocessor:
    """Loader batch -> model input: decode and augment on the device (training, as `DeviceWork` says),
    normalize, MixUp/CutMix (training: adds the soft targets), channels_last where the model is."""

    def __init__(self, preprocess: Preprocess, mix: v2.Transform | None = None) -> None:
        self.preprocess = preprocess
        self.mix = mix
        self.work = DeviceWork()
        self.channels_last = False

    def __call__(self, batch: Any, training: bool) -> Any:
        images, *rest = batch if isinstance(batch, (tuple, list)) else (batch,)
        if training and not isinstance(images, torch.Tensor) and self.work.decode is not None:
            images = self.work.decode(images, rest[0].device)
        if training:
            for step in self.work.steps:
                images = step(images)
        images = self.preprocess.normalize(images)
        if training and self.mix is not None and rest:
            mixed, soft = self.mix(images, rest[0])
            images, rest = mixed, [rest[0], soft]
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return (images, *rest) if rest else images
