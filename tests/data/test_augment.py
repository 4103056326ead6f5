"""Per-image random augmentation of uint8 batches."""

from __future__ import annotations

import torch

from lightcls.data.augment import RandomCrop, RandomHorizontalFlip


def test_random_crop_draws_one_offset_per_image() -> None:
    torch.manual_seed(0)
    batch = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).repeat(64, 3, 1, 1)
    crops = RandomCrop(4, padding=2)(batch)
    assert crops.shape == (64, 3, 4, 4) and crops.dtype == torch.uint8
    assert len({tuple(c[0].flatten().tolist()) for c in crops}) > 10  # not one crop for all
    assert all(torch.equal(c[0], c[1]) for c in crops)  # channels move together
    unpadded = RandomCrop(4)(batch)
    assert torch.equal(unpadded, batch)


def test_random_crop_of_one_image_keeps_its_pixels_in_place() -> None:
    image = torch.arange(36, dtype=torch.uint8).reshape(1, 6, 6)
    crop = RandomCrop(4)(image)
    top, left = divmod(int(crop[0, 0, 0]), 6)
    assert crop.shape == (1, 4, 4) and torch.equal(crop, image[:, top : top + 4, left : left + 4])


def test_horizontal_flip_mirrors_about_half_of_the_images() -> None:
    torch.manual_seed(0)
    batch = torch.arange(4, dtype=torch.uint8).reshape(1, 1, 1, 4).repeat(200, 1, 1, 1)
    out = RandomHorizontalFlip()(batch)
    flipped = (out[:, 0, 0, 0] == 3).sum().item()
    assert 60 < flipped < 140
    assert all(torch.equal(o, b) or torch.equal(o, b.flip(-1)) for o, b in zip(out, batch, strict=True))


def test_each_crop_of_a_batch_is_a_window_of_its_own_padded_image() -> None:
    torch.manual_seed(1)
    batch = torch.arange(8 * 2 * 5 * 7).reshape(8, 2, 5, 7).to(torch.int64) + 1
    crops = RandomCrop(4, padding=1)(batch)
    padded = torch.nn.functional.pad(batch, (1, 1, 1, 1))
    for image, crop in zip(padded, crops, strict=True):
        windows = [(t, left) for t in range(4) for left in range(6)]
        assert any(torch.equal(crop, image[:, t : t + 4, left : left + 4]) for t, left in windows)
