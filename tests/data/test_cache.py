"""The decode cache: the same pixels as decoding from disk, paid once, rebuilt when a file changes."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from lightcls.data import SplitFolderDataModule
from lightcls.data.datasets import ImageDataset
from lightcls.data.preprocess import Preprocess

PREPROCESS = Preprocess(image_size=24, channels=1, mean=(0.5,), std=(0.5,))


def _datamodule(root: Path, cache_dir: Path, cache: bool | str = True) -> SplitFolderDataModule:
    dm = SplitFolderDataModule(root, 24, 1, [0.5], [0.5], cache=cache, cache_dir=str(cache_dir))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_cache_gives_the_same_tensors_as_decoding_from_disk(digits_root: Path, tmp_path: Path) -> None:
    dm = _datamodule(digits_root, tmp_path)
    cached = dm.datasets["val"]
    decoded = ImageDataset(dm.layout.splits["val"], 1, PREPROCESS.resize())
    assert type(cached).__name__ == "TensorImageDataset" and len(cached) == len(decoded) == 270
    for i in (0, 1, len(decoded) - 1):
        assert torch.equal(cached[i][0], decoded[i][0]) and cached[i][1] == decoded[i][1]


def test_a_second_run_reuses_the_cache_and_a_changed_file_rebuilds_it(
    make_split_folder, tmp_path: Path
) -> None:
    root = make_split_folder()
    cache_dir = tmp_path / "cache"
    _datamodule(root, cache_dir)
    (first,) = cache_dir.glob("train-*.npy")
    written = first.stat().st_mtime_ns
    _datamodule(root, cache_dir)
    assert list(cache_dir.glob("train-*.npy")) == [first] and first.stat().st_mtime_ns == written

    changed = root / "training_set" / "rock" / "rock00.png"
    Image.new("L", (16, 16), 255).save(changed)
    os.utime(changed, ns=(written + 10**9, written + 10**9))
    dm = _datamodule(root, cache_dir)
    (second,) = cache_dir.glob("train-*.npy")
    assert second != first  # the stale cache is replaced, not kept beside the new one
    index = [p for p, _ in dm.layout.splits["train"]].index(changed)
    assert dm.datasets["train"][index][0].unique().tolist() == [255]


def test_auto_skips_the_cache_for_data_sets_over_the_limit(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    dm = SplitFolderDataModule(
        root, 24, 1, [0.5], [0.5], cache="auto", cache_max_mb=0.001, cache_dir=str(tmp_path / "c")
    )
    dm.prepare_data()
    dm.setup("fit")
    assert not (tmp_path / "c").exists() and type(dm.datasets["train"]).__name__ == "ImageDataset"
