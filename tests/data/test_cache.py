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


def test_auto_keeps_data_sets_over_the_limit_in_the_disk_cache(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    dm = SplitFolderDataModule(
        root, 24, 1, [0.5], [0.5], cache="auto", cache_max_mb=0.001, cache_dir=str(tmp_path / "c")
    )
    dm.prepare_data()
    dm.setup("fit")
    assert not list((tmp_path / "c").glob("*.npy")) and len(list((tmp_path / "c").glob("*-28side-*"))) == 3
    assert type(dm.datasets["train"]).__name__ == "ShardImageDataset"
    no_cache = SplitFolderDataModule(root, 24, 1, [0.5], [0.5], cache=False, cache_dir=str(tmp_path / "n"))
    no_cache.setup("fit")
    assert type(no_cache.datasets["train"]).__name__ == "ImageDataset" and not (tmp_path / "n").exists()


def _photos(root: Path, n: int = 4) -> Path:
    """Two classes of 800x600 JPEG photos (smooth gradients with noise), n each, in train and val."""
    rng = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for label, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                ramp = torch.linspace(0, 1, 800).expand(600, 800)
                noise = torch.rand(600, 800, 3, generator=rng) * 40
                pixels = (ramp[..., None] * torch.tensor([200.0, 120 + 60 * label, 80]) + noise).clamp(0, 255)
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(
                    root / split / name / f"{i}.jpg", quality=90
                )
    return root


def test_the_disk_cache_stores_photos_resized_once_and_gives_nearly_the_same_pixels(tmp_path: Path) -> None:
    root = _photos(tmp_path / "photos")
    cache_dir = tmp_path / "cache"

    def module(cache: bool | str, cache_max_mb: float = 2048) -> SplitFolderDataModule:
        dm = SplitFolderDataModule(
            root,
            64,
            3,
            [0.5] * 3,
            [0.5] * 3,
            cache=cache,
            cache_dir=str(cache_dir),
            cache_max_mb=cache_max_mb,
            num_workers=0,
        )
        dm.prepare_data()
        dm.setup("fit")
        return dm

    disk, direct = module("disk"), module(False)
    assert type(disk.datasets["val"]).__name__ == "ShardImageDataset"
    (folder,) = cache_dir.glob("val-64px-3ch-74side-*")  # 1.15 x 64, rounded up
    stored = [disk.datasets["val"].reader.read(row)[0] for row in disk.datasets["val"].rows]
    assert {Image.open(__import__("io").BytesIO(b)).size for b in stored} == {(99, 74)}
    for i in range(len(direct.datasets["val"])):
        a, b = disk.datasets["val"][i], direct.datasets["val"][i]
        assert a[1] == b[1] and a[0].shape == b[0].shape == (3, 64, 64)
        assert (a[0].float() - b[0].float()).abs().mean() < 3  # grey levels, of 255
    built = folder.stat().st_mtime_ns
    auto = module("auto", cache_max_mb=0)  # too big for memory: the same disk cache, not built again
    assert type(auto.datasets["train"]).__name__ == "ShardImageDataset" and folder.stat().st_mtime_ns == built
    os.utime(root / "val" / "cat" / "0.jpg", ns=(1, 1))
    module("disk")
    (rebuilt,) = cache_dir.glob("val-64px-3ch-74side-*")
    assert rebuilt != folder and not folder.exists()


def test_a_second_process_building_the_same_disk_cache_keeps_the_first(tmp_path: Path) -> None:
    from lightcls.data.cache import build_disk_cache, disk_cache_path

    root = _photos(tmp_path / "photos", n=1)
    samples = [(p, 0) for p in sorted((root / "val").rglob("*.jpg"))]
    pre = Preprocess(image_size=64, channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)
    folder = disk_cache_path(tmp_path / "cache", "val", samples, pre)
    build_disk_cache(folder, "val", samples, ["cat", "dog"], pre)
    first = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    build_disk_cache(folder, "val", samples, ["cat", "dog"], pre)  # as a DDP rank that started at once
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [folder.name]  # its own copy removed


def test_ctrl_c_while_the_cache_is_built_leaves_no_partial_file(
    digits_root: Path, tmp_path: Path, monkeypatch
):
    from lightcls.data.cache import build_cache

    samples = SplitFolderDataModule(digits_root, 24, 1, [0.5], [0.5]).layout.splits["train"]
    real = ImageDataset.__getitem__

    def interrupted_at_300(self, index: int):
        if index == 300:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(ImageDataset, "__getitem__", interrupted_at_300)
    try:
        build_cache(tmp_path / "cache" / "train.npy", samples, PREPROCESS)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the build was not interrupted")
    assert list((tmp_path / "cache").iterdir()) == []
