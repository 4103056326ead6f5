"""Per-image random augmentation of uint8 batches."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from helpers import REPO, compose_train
from lightcls.data.augment import RandomCrop, RandomHorizontalFlip, RandomResizedCrop, _resample
from lightcls.errors import LightclsError


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


def test_each_crop_keeps_its_own_batch_when_padded_batches_follow_one_another() -> None:
    crop = RandomCrop(4, padding=2, fill=9)
    for n, value in [(6, 1), (6, 2), (3, 3), (6, 4)]:  # the padded copy is reused between same-shape batches
        torch.manual_seed(value)
        batch = torch.full((n, 2, 4, 4), value, dtype=torch.uint8)
        crops = crop(batch)
        torch.manual_seed(value)
        top, left = torch.randint(0, 5, (n,)), torch.randint(0, 5, (n,))
        padded = F.pad(batch, (2, 2, 2, 2), value=9)
        corners = enumerate(zip(top, left, strict=True))
        expected = [padded[i, :, t : t + 4, u : u + 4] for i, (t, u) in corners]
        assert torch.equal(crops, torch.stack(expected))
        assert set(crops.unique().tolist()) <= {9, value}


@pytest.mark.parametrize("padding", [0, 2])
def test_crops_cut_from_the_whole_store_are_the_gathered_batchs_crops(padding: int) -> None:
    store = torch.randint(0, 256, (50, 3, 8, 7), dtype=torch.uint8)
    index = torch.tensor([7, 3, 49, 0, 3])
    crop = RandomCrop(6, padding=padding, fill=5)
    others = [store.flip(0).contiguous(), store.transpose(2, 3)]  # another store, one not contiguous
    for seed, source in enumerate([store, store, *others]):
        torch.manual_seed(seed)
        expected = RandomCrop(6, padding=padding, fill=5)(source.index_select(0, index))
        torch.manual_seed(seed)
        assert torch.equal(crop.gather(source, index), expected)
    crop.store_max_bytes = 0  # a store too big to copy padded: the crops of the gathered batch
    torch.manual_seed(4)
    expected = crop(store.index_select(0, index))
    torch.manual_seed(4)
    assert torch.equal(crop.gather(store, index), expected)
    assert crop._store[0] is not store if not padding else crop._store[1] is None  # no copy of it kept


@pytest.mark.parametrize(("size", "padding"), [(32, -1), (0, 2)])
def test_a_negative_padding_or_an_empty_crop_is_one_line(size: int, padding: int) -> None:
    with pytest.raises(
        LightclsError, match=rf"^RandomCrop\(size={size}, padding={padding}\): size must be >= 1"
    ):
        RandomCrop(size, padding=padding)


def test_the_padded_store_is_made_once_and_never_pickled() -> None:
    import pickle

    store = torch.zeros(2000, 3, 32, 32, dtype=torch.uint8)
    crop = RandomCrop(32, padding=4)
    crop.gather(store, torch.arange(8))
    copy = crop._store[1]
    crop.gather(store, torch.arange(8, 16))
    assert crop._store[1] is copy and copy.shape == (2000, 3, 40, 40)
    restored = pickle.loads(pickle.dumps(crop))  # to a loader worker: without the 9.6 MB copy
    assert len(pickle.dumps(crop)) < 10_000 and restored._store is None
    assert restored.gather(store, torch.arange(4)).shape == (4, 3, 32, 32)


def test_a_cached_split_cuts_its_crops_from_the_store_then_applies_the_other_steps() -> None:
    from lightcls.data.datasets import TensorImageDataset

    store = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    crop, flip = RandomCrop(8, padding=2), RandomHorizontalFlip()
    dataset = TensorImageDataset(store, list(range(40)), [crop, flip])
    torch.manual_seed(0)
    images, labels = dataset.__getitems__([5, 1, 30])
    torch.manual_seed(0)
    expected = flip(RandomCrop(8, padding=2)(store[[5, 1, 30]]))
    assert torch.equal(images, expected) and labels.tolist() == [5, 1, 30]
    assert crop._store is not None  # cut from the padded store, not from a gathered batch


@pytest.mark.parametrize(("height", "width"), [(32, 32), (24, 40)])
def test_resized_crop_draws_a_box_per_image_within_v2s_scale_and_ratio(height: int, width: int) -> None:
    torch.manual_seed(0)
    scale, ratio = (0.2, 0.9), (0.5, 1.5)
    boxes = RandomResizedCrop(32, scale=scale, ratio=ratio).boxes(4000, height, width)
    top, left, h, w = boxes.T.double()
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    area = height * width
    # v2 rounds the box's sides: each side is within half a pixel of a box with exact scale and ratio
    assert ((h + 0.5) * (w + 0.5) >= scale[0] * area).all() and (
        (h - 0.5) * (w - 0.5) <= scale[1] * area
    ).all()
    assert ((w + 0.5) / (h - 0.5) >= ratio[0]).all() and ((w - 0.5) / (h + 0.5) <= ratio[1]).all()
    assert len({tuple(b) for b in boxes[:64].tolist()}) > 50  # not one box for the batch
    # the same distribution as v2's own boxes (mean area fraction, seeded, 4,000 draws each)
    v2_crop = v2.RandomResizedCrop(32, scale=scale, ratio=ratio)
    image = torch.zeros(1, height, width)
    ours = (h * w / area).mean().item()
    theirs = (
        torch.tensor(
            [(p["height"] * p["width"]) / area for p in (v2_crop.make_params([image]) for _ in range(4000))]
        )
        .mean()
        .item()
    )
    assert abs(ours - theirs) < 0.02


def test_resized_crop_resizes_each_box_as_v2_does() -> None:
    torch.manual_seed(3)
    batch = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    crop = RandomResizedCrop(32, scale=(0.3, 1.0))
    torch.manual_seed(4)
    boxes = crop.boxes(6, 40, 40)
    torch.manual_seed(4)
    out = crop(batch)
    assert out.shape == (6, 3, 32, 32) and out.dtype == torch.uint8
    for image, result, (top, left, h, w) in zip(batch, out, boxes.tolist(), strict=True):
        expected = v2.functional.resized_crop(image, top, left, h, w, [32, 32], antialias=True)
        assert torch.equal(result, expected)
    # the GPU path (one grid_sample over the batch) gives the same pictures within rounding (inside the
    # box's edge: there it blends in the pixels beyond the box, where interpolate repeats the edge)
    upsampled = _resample(batch, boxes, 48)
    for image, result, (top, left, h, w) in zip(batch, upsampled, boxes.tolist(), strict=True):
        expected = F.interpolate(
            image[None, :, top : top + h, left : left + w].float(),
            size=(48, 48),
            mode="bilinear",
            align_corners=False,
        )[0]
        assert (result.float() - expected)[:, 2:-2, 2:-2].abs().max() <= 1


def test_resized_crop_refuses_a_scale_outside_0_to_1() -> None:
    with pytest.raises(LightclsError, match=r"scale must be \[low, high\] within \(0, 1\].*scale=\[0.5, 2\]"):
        RandomResizedCrop(32, scale=(0.5, 2))


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (REPO / "conf" / "augment").glob("*.yaml")))
def test_every_augment_recipe_gives_batches_of_the_input_size(recipe: str, digits_root) -> None:
    from hydra.utils import instantiate

    from lightcls.data.datasets import collate

    for channels in (1, 3):  # the policies take grayscale too
        overrides = [f"augment={recipe}", f"data.root={digits_root}", f"data.channels={channels}"]
        overrides += ["data.num_workers=0", "data.hflip=0.5"]  # the decode cache shared with other tests
        overrides += ["data.mean=[0.5,0.5,0.5]", "data.std=[0.5,0.5,0.5]"] if channels == 3 else []
        dm = instantiate(compose_train(overrides).data)
        dm.setup("fit")
        dataset = dm.datasets["train"]
        draws = []
        for seed in (1, 2):  # the same 16 images, augmented twice
            torch.manual_seed(seed)
            draws.append(collate(dataset.__getitems__(list(range(16))))[0])  # as the DataLoader hands it on
        assert draws[0].shape == (16, channels, 32, 32) and draws[0].dtype == torch.uint8
        assert torch.equal(draws[0], draws[1]) == (recipe == "none")
        assert dataset.batched == (recipe not in ("trivialaugment", "randaugment", "autoaugment", "erasing"))
