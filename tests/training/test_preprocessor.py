"""The batch preprocessor: the DataModule's device work on training batches only, then normalize and mix."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from lightcls.data.base import DeviceWork
from lightcls.data.preprocess import Preprocess
from lightcls.training.preprocessor import BatchPreprocessor

PRE = Preprocess(8, 1, (0.5,), (0.5,))


def test_device_work_runs_on_training_batches_only_then_every_batch_is_normalized() -> None:
    images = torch.full((4, 1, 8, 8), 255, dtype=torch.uint8)
    labels = torch.arange(4)
    preprocessor = BatchPreprocessor(PRE)
    preprocessor.work = DeviceWork(steps=[lambda x: x // 255])  # a batched step, as the DataModule hands it
    trained, target = preprocessor((images, labels), training=True)
    evaluated, _ = preprocessor((images, labels), training=False)
    assert torch.equal(trained, torch.full((4, 1, 8, 8), (1 / 255 - 0.5) / 0.5))  # augmented, normalized
    assert torch.equal(evaluated, torch.ones(4, 1, 8, 8)) and torch.equal(target, labels)


def test_encoded_training_batches_are_decoded_by_the_datamodules_decoder_and_mixed() -> None:
    seen = []

    def decode(encoded, device):
        seen.append((list(encoded), device))
        return torch.zeros(len(encoded), 1, 8, 8, dtype=torch.uint8)

    preprocessor = BatchPreprocessor(PRE, mix=v2.MixUp(alpha=1.0, num_classes=3))
    preprocessor.work = DeviceWork(decode=decode)
    images, labels, soft = preprocessor(([b"a", b"b"], torch.tensor([0, 2])), training=True)
    assert seen == [([b"a", b"b"], torch.device("cpu"))]
    assert images.shape == (2, 1, 8, 8) and torch.equal(labels, torch.tensor([0, 2]))
    assert soft.shape == (2, 3) and torch.allclose(soft.sum(dim=1), torch.ones(2))  # MixUp's soft targets
