"""The split-folder layout: classes, splits, listings, and one clear line for each mistake."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lightcls.data import read_layout
from lightcls.data.layout import SPLIT_FILE
from lightcls.errors import LightclsError


def test_reads_classes_splits_and_labels_from_classes_txt(make_split_folder) -> None:
    root = make_split_folder(classes=("rock", "paper", "scissors"))  # not alphabetical: the file decides
    layout = read_layout(root)
    assert layout.classes == ["rock", "paper", "scissors"]
    assert {split: len(s) for split, s in layout.splits.items()} == {"train": 12, "val": 6, "test": 6}
    assert all(path.parent.name == layout.classes[label] for path, label in layout.splits["train"])


def test_without_classes_txt_labels_are_sorted_folder_names(make_split_folder) -> None:
    root = make_split_folder(classes=("rock", "paper", "scissors"), classes_txt=False)
    assert read_layout(root).classes == ["paper", "rock", "scissors"]


def test_accepts_train_val_test_folder_names(make_split_folder) -> None:
    root = make_split_folder()
    for old, new in (("training_set", "train"), ("val_set", "val"), ("test_set", "test")):
        (root / old).rename(root / new)
    layout = read_layout(root)
    assert [len(layout.splits[s]) for s in ("train", "val", "test")] == [12, 6, 6]


def test_missing_val_set_leaves_val_empty(make_split_folder) -> None:
    layout = read_layout(make_split_folder(per_class={"training_set": 3}))
    assert not layout.has("val") and not layout.has("test") and layout.has("train")


def test_hidden_and_non_image_files_are_ignored(make_split_folder) -> None:
    root = make_split_folder()
    (root / "training_set" / "rock" / ".DS_Store").write_bytes(b"\0\0")
    (root / "training_set" / "rock" / "notes.txt").write_text("hi")
    assert len(read_layout(root).splits["train"]) == 12


def test_missing_root_names_the_path_and_the_layout(tmp_path: Path) -> None:
    with pytest.raises(
        LightclsError,
        match=rf"^data set not found at {re.escape(str(tmp_path))}/nope: "
        r"expected .*classes.txt, .*training_set/<class>/",
    ):
        read_layout(tmp_path / "nope")


def test_folder_not_in_classes_txt_is_an_error(make_split_folder) -> None:
    root = make_split_folder()
    (root / "classes.txt").write_text("paper\nrock\n")
    with pytest.raises(LightclsError) as err:
        read_layout(root)
    assert str(err.value) == (
        f"{root / 'training_set' / 'scissors'}: folder is not a class named in {root / 'classes.txt'} "
        "(classes: paper, rock)"
    )


def test_class_without_training_images_is_an_error(make_split_folder) -> None:
    root = make_split_folder()
    (root / "classes.txt").write_text("paper\nrock\nscissors\nlizard\n")
    with pytest.raises(LightclsError) as err:
        read_layout(root)
    assert (
        str(err.value) == f"{root / 'classes.txt'}: class 'lizard' has no images in {root / 'training_set'}"
    )


def test_val_txt_line_with_a_missing_file_names_file_and_line(make_split_folder) -> None:
    root = make_split_folder()
    (root / "val.txt").write_text("paper/paper00.png 0\nrock/gone.png 1\n")
    with pytest.raises(LightclsError) as err:
        read_layout(root)
    assert (
        str(err.value)
        == f"{root / 'val.txt'}:2: file {root / 'val_set' / 'rock' / 'gone.png'} does not exist"
    )


def test_val_txt_label_disagreeing_with_its_folder_is_an_error(make_split_folder) -> None:
    root = make_split_folder()
    (root / "test.txt").write_text("paper/paper00.png 2\n")
    with pytest.raises(LightclsError) as err:
        read_layout(root)
    assert str(err.value) == f"{root / 'test.txt'}:1: label 2 ('scissors') disagrees with folder 'paper'"


@pytest.mark.parametrize(
    ("split", "listed"),
    [
        ("val", [("paper00.png", 0), ("scissors01.png", 2)]),
        ("train", [("paper00.png", 0), ("rock01.png", 1), ("scissors02.png", 2)]),
    ],
)
def test_a_list_file_selects_its_splits_images(make_split_folder, split: str, listed: list) -> None:
    root = make_split_folder()
    classes = ["paper", "rock", "scissors"]
    lines = [f"{classes[label]}/{name} {label}" for name, label in listed]
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    layout = read_layout(root)
    assert [(p.name, label) for p, label in layout.splits[split]] == listed


def test_plain_class_folders_get_a_seeded_split_written_down_and_reused(make_split_folder) -> None:
    root = make_split_folder(per_class={"training_set": 10})
    plain = root / "training_set"
    first = read_layout(plain, val_fraction=0.2, seed=3)
    record = json.loads((plain / SPLIT_FILE).read_text())
    assert record["seed"] == 3 and len(record["splits"]["val"]) == 6  # 2 of 10 per class
    assert {label for _, label in first.splits["val"]} == {0, 1, 2}  # stratified
    again = read_layout(plain, val_fraction=0.5, seed=99)  # the written split wins
    assert again.splits == first.splits


def test_list_files_as_paddleclas_writes_them(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    flat = tmp_path / "flat"
    (flat / "images").mkdir(parents=True)
    lines = {"train": [], "val": []}
    for split, folder in (("train", "training_set"), ("val", "val_set")):
        for i, png in enumerate(sorted((root / folder).rglob("*.png"))):
            target = flat / "images" / f"{split}_{i:02d}.png"
            target.write_bytes(png.read_bytes())
            lines[split].append(
                f"images/{target.name} {['paper', 'rock', 'scissors'].index(png.parent.name)}"
            )
    (flat / "classes.txt").write_text("paper\nrock\nscissors\n")
    for split in lines:
        (flat / f"{split}_list.txt").write_text("\n".join(lines[split]) + "\n")
    layout = read_layout(flat, lists={"train": "train_list.txt", "val": "val_list.txt"})
    assert (
        len(layout.splits["train"]) == 12 and len(layout.splits["val"]) == 6 and layout.splits["test"] == []
    )
    assert layout.splits["train"][0] == (flat / "images" / "train_00.png", 0)
    (flat / "val_list.txt").write_text("images/val_00.png 7\n")
    with pytest.raises(LightclsError, match=r"val_list\.txt:1: label 7 is not in 0\.\.2$"):
        read_layout(flat, lists={"train": "train_list.txt", "val": "val_list.txt"})


def test_training_from_a_list_through_the_config(make_split_folder, tmp_path: Path) -> None:
    from helpers import compose_train
    from lightcls.tasks import train

    root = make_split_folder()
    (root / "my_train.txt").write_text(
        "training_set/paper/paper00.png 0\ntraining_set/rock/rock00.png 1\n"
        "training_set/scissors/scissors00.png 2\n"
    )
    cfg = compose_train(
        [
            f"data.root={root}",
            "data=folder",
            "data.image_size=16",
            "data.train_list=my_train.txt",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "data.batch_size=1",
            "logger=none",
        ],
        tmp_path / "r",
    )
    assert train(cfg)["global_step"] == 3  # the 3 listed images, not the 12 in training_set


def test_an_empty_class_folder_of_a_plain_tree_is_one_line_in_train_and_check(
    make_split_folder, tmp_path
) -> None:
    from helpers import SMALL_TRAIN, compose_train, one_line_error
    from lightcls.cli.data import check
    from lightcls.tasks import train

    plain = make_split_folder(per_class={"training_set": 4}) / "training_set"
    (plain / "lizard" / "notes").mkdir(parents=True)
    (plain / "lizard" / "notes" / "readme.txt").write_text("no images here")
    expected = (
        f"{plain / 'lizard'}: class folder 'lizard' holds no images; each class folder of {plain} needs "
        "images (or remove it)"
    )
    assert one_line_error(read_layout, plain) == expected
    assert one_line_error(check, [f"data.root={plain}"]) == expected
    assert (
        one_line_error(train, compose_train([*SMALL_TRAIN, f"data.root={plain}"], tmp_path / "run"))
        == expected
    )
    assert not (plain / SPLIT_FILE).exists()
