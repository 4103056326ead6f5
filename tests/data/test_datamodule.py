"""The DataModule: the embedded digits, loaders, transforms and image decoding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from lightcls.data import SplitFolderDataModule, read_layout
from lightcls.data.base import DeviceWork
from lightcls.data.decode import load_image
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
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (16,)
    assert len(dm.val_dataloader().dataset) == 270 and len(dm.test_dataloader().dataset) == 270
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.npy")) == (
        ["test", "train", "val"] if cache else []
    )


def test_eval_transform_is_deterministic_and_agrees_with_cached_and_decoded_batches(
    make_split_folder, tmp_path: Path
) -> None:
    root = make_split_folder(mode="RGB", size=20)
    kwargs = {"image_size": 16, "channels": 3, "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.4]}
    cached = SplitFolderDataModule(root, cache=True, cache_dir=str(tmp_path / "cache"), **kwargs)
    decoded = SplitFolderDataModule(root, cache=False, **kwargs)
    cached.setup("validate")
    decoded.setup("validate")
    assert type(cached.datasets["val"]).__name__ == "TensorImageDataset"
    assert type(decoded.datasets["val"]).__name__ == "ImageDataset"
    pre = decoded.preprocess
    path, _ = decoded.layout.splits["val"][-1]
    first, second = pre.eval_transform()(load_image(path, 3)), pre.eval_transform()(load_image(path, 3))
    assert first.shape == (3, 16, 16) and first.dtype == torch.float32 and torch.equal(first, second)
    assert torch.equal(pre.normalize(decoded.datasets["val"][-1][0]), first)
    assert torch.equal(pre.normalize(cached.datasets["val"][-1][0]), first)


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


def test_drop_last_leaves_out_the_partial_training_batch(digits_root: Path, tmp_path: Path) -> None:
    dm = SplitFolderDataModule(
        digits_root, 28, 1, [0.5], [0.5], batch_size=100, drop_last=True, cache_dir=str(tmp_path / "cache")
    )
    dm.setup()
    assert len(dm.train_dataloader()) == 12  # 1257 images: 12 full batches, the 57 left out
    assert len(dm.val_dataloader()) == 3  # evaluation keeps every image


def test_balance_draws_classes_evenly_or_weights_the_loss(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder(per_class={"training_set": 2, "val_set": 1}, classes=("a", "b"))
    for i in range(2, 18):  # class a: 18 images, class b: 2
        Image.new("L", (16, 16), 40 + i).save(root / "training_set" / "a" / f"more{i:02d}.png")
    dm = SplitFolderDataModule(str(root), 16, 1, [0.5], [0.5], batch_size=20, balance="sampler")
    assert dm.class_counts() == [18, 2]
    assert dm.class_weights() == pytest.approx([20 / 36, 20 / 4])
    dm.setup("fit")
    torch.manual_seed(0)
    labels = torch.cat([y for _ in range(50) for _, y in dm.train_dataloader()])
    assert len(labels) == 50 * 20 and 0.4 < labels.float().mean().item() < 0.6  # b drawn as often as a
    plain = SplitFolderDataModule(str(root), 16, 1, [0.5], [0.5], batch_size=20)
    plain.setup("fit")
    assert torch.cat([y for _, y in plain.train_dataloader()]).float().mean().item() == pytest.approx(0.1)
    with pytest.raises(LightclsError, match="^data.balance must be one of none, sampler, loss, got 'yes'$"):
        SplitFolderDataModule(str(root), 16, 1, [0.5], [0.5], balance="yes")


def test_gpu_augmentation_is_inert_on_the_cpu_and_per_image_steps_use_workers(
    digits_root: Path, tmp_path: Path
) -> None:
    import lightning as L

    from lightcls.data.augment import RandomResizedCrop
    from lightcls.training import ClassificationModule

    crop = RandomResizedCrop(28, scale=(0.5, 1.0))
    dm = SplitFolderDataModule(
        digits_root,
        28,
        1,
        [0.5],
        [0.5],
        augment=[crop],
        device_augment=True,
        cache_dir=str(tmp_path / "cache"),
    )
    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}
    module = ClassificationModule({"name": "lenet"}, dm.classes, dm.preprocess.to_dict(), optimizer=sgd)
    trainer = L.Trainer(
        default_root_dir=tmp_path,  # where the module writes metrics.csv
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, datamodule=dm)
    assert dm.device_steps == [] and dm.datasets["train"].augment == [crop]  # the loader augments
    assert module.preprocessor.work == DeviceWork()  # nothing left to the device on a CPU
    assert dm.train_dataloader().num_workers == 0  # every step batched: one gather + crop a batch
    per_image = SplitFolderDataModule(
        digits_root,
        28,
        1,
        [0.5],
        [0.5],
        cache_dir=str(tmp_path / "cache"),
        augment=[crop, v2.TrivialAugmentWide()],
        num_workers="auto",
    )
    per_image.setup("fit")
    assert per_image.train_dataloader().num_workers == min(os.cpu_count(), 8)
    assert per_image.val_dataloader().num_workers == 0


def test_a_flip_where_data_hflip_says_mirrors_change_the_class_is_one_line(digits_root: Path) -> None:
    from helpers import compose_train, one_line_error
    from lightcls.workflows.build import build_datamodule

    base = [f"data.root={digits_root}"]  # digits: data.hflip=0 (a flipped 2 is not a 2)
    assert [type(s).__name__ for s in build_datamodule(compose_train([*base, "augment=light"])).augment] == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",  # the recipe's flip takes p=data.hflip: never flips here
    ]
    flip = "data.augment=[{_target_: torchvision.transforms.v2.RandomHorizontalFlip, p: 0.5}]"
    assert one_line_error(build_datamodule, compose_train([*base, flip])) == (
        "data.augment flips images left-right (p=0.5) but data.hflip=0 says a mirrored image changes its "
        "class here; remove the flip, or set data.hflip=P if mirrors are fine"
    )
    assert build_datamodule(compose_train([*base, flip, "data.hflip=0.5"])).augment


def test_a_crop_larger_than_what_reaches_it_is_one_line(digits_root: Path) -> None:
    from helpers import compose_train, one_line_error
    from lightcls.workflows.build import build_datamodule

    def crop(size: int, padding: int) -> str:
        step = f"_target_: lightcls.data.augment.RandomCrop, size: {size}, padding: {padding}"
        return f"data.augment=[{{{step}}}]"

    base = [f"data.root={digits_root}", "data.image_size=32"]
    assert one_line_error(build_datamodule, compose_train([*base, crop(40, 2)])) == (
        "data.augment: RandomCrop(size=40, padding=2) of a 32x32 image; its size must be at most 36 "
        "(the image and twice the padding)"
    )
    assert build_datamodule(compose_train([*base, crop(36, 2)])).augment  # the largest that fits
