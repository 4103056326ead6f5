"""The DataModule: the embedded digits, loaders, transforms and image decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightcls.data import SplitFolderDataModule, read_layout
from lightcls.data.images import load_image
from lightcls.errors import LightclsError


def test_digits_are_written_in_the_split_folder_layout(digits_root: Path) -> None:
    layout = read_layout(digits_root)
    assert layout.classes == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    sizes = {split: len(samples) for split, samples in layout.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["train"] == 1257
    assert (digits_root / "val.txt").read_text().count("\n") == sizes["val"]


@pytest.mark.parametrize("cache", [True, False])
def test_loaders_give_uint8_batches_of_the_configured_size(
    digits_root: Path, tmp_path: Path, cache: bool
) -> None:
    dm = SplitFolderDataModule(
        digits_root, 28, 1, [0.5], [0.5], batch_size=16, cache=cache, cache_dir=str(tmp_path / "cache")
    )
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (16,)
    assert len(dm.val_dataloader().dataset) == 270 and len(dm.test_dataloader().dataset) == 270
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.npy")) == (
        ["test", "train", "val"] if cache else []
    )


def test_eval_transform_is_deterministic_and_rgb_has_three_channels(make_split_folder) -> None:
    root = make_split_folder(mode="RGB", size=20)
    dm = SplitFolderDataModule(root, image_size=16, channels=3, mean=[0.5] * 3, std=[0.5] * 3)
    dm.setup("fit")
    first, second = dm.datasets["val"][0][0], dm.datasets["val"][0][0]
    assert first.shape == (3, 16, 16) and first.dtype == torch.uint8 and torch.equal(first, second)


def test_builtin_digits_are_written_on_first_use(tmp_path: Path) -> None:
    dm = SplitFolderDataModule(tmp_path / "d", 32, 1, [0.5], [0.5], builtin="digits")
    dm.prepare_data()
    assert len(dm.classes) == 10 and dm.has_val and dm.has_test


def test_missing_data_set_says_how_to_point_data_root_at_it(tmp_path: Path) -> None:
    dm = SplitFolderDataModule(tmp_path / "hand_gray", 32, 1, [0.5], [0.5], name="hand_gray")
    with pytest.raises(
        LightclsError,
        match=r"data set not found at .*hand_gray: expected .*"
        r"; or set data.root=/path/to/hand_gray$",
    ):
        dm.prepare_data() or dm.classes


def test_load_image_applies_exif_rotation_and_scales_16_bit(tmp_path: Path) -> None:
    wide = Image.new("L", (8, 4), 200)
    exif = wide.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    wide.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg", 1).shape == (1, 8, 4)
    Image.fromarray(np.full((3, 3), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png", 3).unique().tolist() == [255]


def test_an_undecodable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(LightclsError, match=rf"^{bad}: cannot decode image"):
        load_image(bad, 1)
