"""The dataset doctor on broken data sets built in tmp_path, through the real `lightcls-data` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lightcls.data.check import CACHE_FILE, check_dataset


def test_clean_set_passes_and_second_check_reads_nothing(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    first = check_dataset(root)
    assert first.ok and first.read == 24 and (root / CACHE_FILE).is_file()
    again = check_dataset(root)
    assert again.ok and again.read == 0
    touched = root / "val_set" / "rock" / "rock00.png"
    touched.write_bytes(b"not an image any more")
    third = check_dataset(root)
    assert third.read == 1
    assert third.errors == [f"{touched}: cannot decode image (cannot identify image file {str(touched)!r})"]


def test_empty_val_and_imbalance_warn(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder(per_class={"training_set": 2})
    for i in range(30):
        Image.new("L", (8, 8), i).save(root / "training_set" / "rock" / f"more{i}.png")
    report = check_dataset(root)
    assert report.ok
    assert report.warnings == [
        "no val split: training runs without validation and keeps last.ckpt only",
        "imbalanced training split: 32 images in the largest class, 2 in paper, scissors",
    ]


def test_many_images_are_checked_in_several_processes_with_the_same_report(
    make_split_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightcls.data.check as check_module

    root = make_split_folder()
    broken = root / "val_set" / "rock" / "broken.png"
    broken.write_bytes(b"not a png")
    serial = check_dataset(root, cache=False)
    monkeypatch.setattr(check_module, "PARALLEL_FROM", 2)  # the real pool, on a small set
    parallel = check_dataset(root, cache=False)
    assert parallel.files == serial.files and parallel.errors == serial.errors
    assert parallel.read == len(parallel.files) and len(parallel.errors) == 1
    assert parallel.errors[0].startswith(f"{broken}: cannot decode image")
