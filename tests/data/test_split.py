"""`lightcls-data split` on class-folder trees of real images built in tmp_path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from helpers import make_classes
from lightcls.data.check import check_dataset
from lightcls.data.layout import read_layout, split_sizes
from lightcls.data.split import split_folders
from lightcls.errors import LightclsError

SUFFIXES = ".bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp"


def listing(root: Path, split: str) -> list[str]:
    """The lines of `root`/val.txt or test.txt."""
    return (root / f"{split}.txt").read_text(encoding="utf-8").splitlines()


def test_split_is_read_back_stratified_and_checks_ok(tmp_path: Path) -> None:
    src = make_classes(tmp_path / "animals")
    (src / "cat" / "more").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(src / "cat" / "more" / "deep.jpg")  # nested: kept
    dst = tmp_path / "out" / "animals_split"

    counts = split_folders(src, dst, val=0.2, test=0.1, seed=0)

    # cat 21 -> val 4, test 2; dog 10 -> 2, 1; bird 7 -> 1.4 -> 1, 0.7 -> 1 (rounded half up)
    assert counts == {
        "train": {"bird": 5, "cat": 15, "dog": 7},
        "val": {"bird": 1, "cat": 4, "dog": 2},
        "test": {"bird": 1, "cat": 2, "dog": 1},
    }
    assert (dst / "classes.txt").read_text() == "bird\ncat\ndog\n"
    layout = read_layout(dst)
    assert layout.classes == ["bird", "cat", "dog"]
    for split, per_class in counts.items():
        labels = Counter(label for _, label in layout.splits[split])
        assert labels == {layout.classes.index(c): n for c, n in per_class.items()}
    for split in ("val", "test"):
        for line in listing(dst, split):
            rel, label = line.rsplit(" ", 1)
            assert layout.classes[int(label)] == rel.split("/")[0]
            assert (dst / f"{split}_set" / rel).is_file()
    report = check_dataset(dst)
    assert report.ok and report.errors == [] and report.warnings == []

    placed = sorted(
        p.relative_to(dst).as_posix().split("/", 1)[1]
        for p in dst.rglob("*")
        if p.is_file() and p.parent != dst
    )
    sources = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.suffix in (".png", ".jpg"))
    assert placed == sources  # every image once, in exactly one split; .DS_Store and notes.txt left out
    assert "cat/more/deep.jpg" in sources
    assert not list(tmp_path.joinpath("out").glob(".*"))  # no temp folder left behind


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path) -> None:
    src = make_classes(tmp_path / "animals")
    split_folders(src, tmp_path / "a", seed=3)
    split_folders(src, tmp_path / "b", seed=3)
    split_folders(src, tmp_path / "c", seed=4)
    for split in ("val", "test"):
        assert listing(tmp_path / "a", split) == listing(tmp_path / "b", split)
    assert (listing(tmp_path / "a", "val"), listing(tmp_path / "a", "test")) != (
        listing(tmp_path / "c", "val"),
        listing(tmp_path / "c", "test"),
    )


@pytest.mark.parametrize(
    ("n", "val", "test", "sizes"),
    [
        (1, 0.15, 0.15, (0, 0)),  # too few: all to train
        (2, 0.15, 0.15, (0, 0)),
        (3, 0.15, 0.15, (1, 1)),  # enough: at least one each
        (20, 0.15, 0.15, (3, 3)),
        (10, 0.15, 0.15, (2, 2)),  # 1.5 rounds half up
        (10, 0.0, 0.3, (0, 3)),  # a zero fraction stays zero
        (2, 0.7, 0.25, (1, 0)),  # training keeps one image
    ],
)
def test_per_class_sizes(n: int, val: float, test: float, sizes: tuple[int, int]) -> None:
    assert split_sizes(n, val, test) == sizes


def test_no_test_split_when_test_is_zero(tmp_path: Path) -> None:
    src = make_classes(tmp_path / "animals", {"a": 4, "b": 4})
    counts = split_folders(src, tmp_path / "out", val=0.25, test=0)
    assert counts["test"] == {"a": 0, "b": 0}
    assert not (tmp_path / "out" / "test_set").exists() and not (tmp_path / "out" / "test.txt").exists()
    assert [len(s) for s in read_layout(tmp_path / "out").splits.values()] == [6, 2, 0]


def test_link_and_symlink_modes(tmp_path: Path) -> None:
    src = make_classes(tmp_path / "animals", {"a": 4, "b": 4})
    (tmp_path / "linked").mkdir()  # an existing empty DST is fine
    split_folders(src, tmp_path / "linked", mode="link")
    split_folders(src, tmp_path / "symlinked", mode="symlink")
    split_folders(src, tmp_path / "copied", mode="copy")
    for path, _ in read_layout(tmp_path / "linked").splits["train"]:
        original = src / path.parent.name / path.name
        assert path.stat().st_ino == original.stat().st_ino and not path.is_symlink()
        assert (tmp_path / "copied" / "training_set" / path.parent.name / path.name).stat().st_ino != (
            original.stat().st_ino
        )
    for path, _ in read_layout(tmp_path / "symlinked").splits["val"]:
        assert path.is_symlink() and path.resolve() == (src / path.parent.name / path.name).resolve()
    assert check_dataset(tmp_path / "symlinked").ok


def test_refusals_name_the_path(tmp_path: Path) -> None:
    src = make_classes(tmp_path / "animals", {"a": 3, "b": 3})
    base = tmp_path.resolve()
    cases = [
        ({"src": tmp_path / "nope"}, f"SRC {base / 'nope'} does not exist or is not a folder"),
        ({"val": 1.0}, "val must be a fraction in [0, 1), got 1.0"),
        ({"test": -0.1}, "test must be a fraction in [0, 1), got -0.1"),
        ({"val": "abc"}, "val must be a fraction in [0, 1), got 'abc'"),
        ({"val": 0.6, "test": 0.4}, "val + test must be below 1 (training needs images), got 0.6 + 0.4"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
        ({"mode": "move"}, "mode must be one of copy, link, symlink, got 'move'"),
        (
            {"dst": src / "out"},
            f"DST {base / 'animals/out'} is inside SRC {base / 'animals'}; "
            "it would become a class folder of SRC",
        ),
    ]
    for kwargs, message in cases:
        args = {"src": src, "dst": tmp_path / "out", **kwargs}
        with pytest.raises(LightclsError) as err:
            split_folders(**args)
        assert str(err.value) == message
        assert not (tmp_path / "out").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no folders")
    with pytest.raises(LightclsError) as err:
        split_folders(empty, tmp_path / "out")
    assert (
        str(err.value)
        == f"SRC {base / 'empty'} has no class folders (expected {base / 'empty'}/<class>/<image>)"
    )

    (src / "c").mkdir()
    (src / "c" / ".DS_Store").write_bytes(b"junk")
    with pytest.raises(LightclsError) as err:
        split_folders(src, tmp_path / "out")
    assert str(err.value) == f"{base / 'animals/c'}: class 'c' has no images ({SUFFIXES})"
    (src / "c" / ".DS_Store").unlink()
    (src / "c").rmdir()

    split_folders(src, tmp_path / "out")
    with pytest.raises(LightclsError) as err:
        split_folders(tmp_path / "out", tmp_path / "again")
    assert str(err.value) == (
        f"SRC {base / 'out'} is already split (it has training_set/); give a tree of class folders"
    )

    user_file = tmp_path / "full" / "keep.txt"
    user_file.parent.mkdir()
    user_file.write_text("precious")
    with pytest.raises(LightclsError) as err:
        split_folders(src, user_file.parent)
    assert str(err.value) == (
        f"DST {base / 'full'} exists and is not empty; refusing to overwrite it (give a new one)"
    )
    assert sorted(user_file.parent.iterdir()) == [user_file] and user_file.read_text() == "precious"
