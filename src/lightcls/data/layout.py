"""Read the split-folder data layout (SPEC §1): classes, and the labelled files of each split."""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lightcls.data.annotations import AUTO_NAMES, Label, find_annotation_file, read_annotations
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Each split's accepted folder names, MMEdu's first.
SPLIT_DIRS = {"train": ("training_set", "train"), "val": ("val_set", "val"), "test": ("test_set", "test")}
#: Where the seeded split of a plain class-folder tree is written down.
SPLIT_FILE = "lightcls_split.json"
SPLITS_ORDER = ("train", "val", "test")

#: (file, label): a class index, or for a multi-label data set a tuple of them (empty: none of the classes)
Sample = tuple[Path, Label]


@dataclass(frozen=True)
class Layout:
    """A data set on disk: its class names (index = label) and (file, label) pairs per split."""

    root: Path
    classes: list[str]
    splits: dict[str, list[Sample]]
    multilabel: bool = False

    def has(self, split: str) -> bool:
        """True when `split` exists and holds at least one image."""
        return bool(self.splits.get(split))

    def class_counts(self, split: str = "train") -> list[int]:
        """Images of `split` per class (index i: label i; a multi-label image counts for each label)."""
        counts = [0] * len(self.classes)
        for _, label in self.splits.get(split, []):
            for index in (label,) if isinstance(label, int) else label:
                counts[index] += 1
        return counts


def expected_layout(root: Path) -> str:
    """One line describing the layout we look for at `root`."""
    return (
        f"expected {root}/classes.txt, {root}/training_set/<class>/*.png, {root}/val_set/<class>/..., "
        "optional test_set/, val.txt, test.txt (or train/ val/ test/, or plain class folders)"
    )


def read_layout(
    root: str | Path,
    val_fraction: float = 0.15,
    seed: int = 0,
    lists: Mapping[str, str | Path | None] | None = None,
    label_delim: str | None = None,
) -> Layout:
    """Read the layout at `root`; a plain tree of class folders gets a seeded split written down.

    `lists` (split -> file, relative to `root` or absolute) replace a split's images with those the file
    names, in any format lightcls.data.annotations reads (`path label` lines as PaddleClas's train_list.txt
    and mmpretrain's ann_file, and the multi-label formats), each path relative to the file's folder or
    absolute. A `train.txt` beside `val.txt` selects the training images. A multi-label file makes the
    whole data set multi-label.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise LightclsError(f"data set not found at {root}: {expected_layout(root)}")
    given = _resolve_auto(root, lists or {})
    layout = _read_split_layout(root, val_fraction, seed, listed_train="train" in given)
    classes: list[str] | None = layout.classes or None
    splits, multilabel = dict(layout.splits), False
    for split in sorted(given, key=SPLITS_ORDER.index):  # the training file may name the classes
        listing = given[split] if given[split].is_absolute() else root / given[split]
        found = read_annotations(listing, classes, label_delim)
        classes = classes or found.classes
        splits[split] = found.samples
        multilabel = multilabel or found.multilabel
    if "train" in given and not splits["train"]:
        raise LightclsError(f"{given['train']}: the training list names no images")
    if multilabel:  # a single-label split of a multi-label set: one label each
        splits = {s: [(p, (c,) if isinstance(c, int) else c) for p, c in v] for s, v in splits.items()}
    return Layout(root, classes or [], splits, multilabel)


def _resolve_auto(root: Path, lists: Mapping[str, str | Path | None]) -> dict[str, Path]:
    """The annotation file of each split given one; `auto`: the split's file found in `root`, if any (the
    training split's must be there)."""
    given = {}
    for split, path in lists.items():
        if str(path) == "auto":
            found = find_annotation_file(root, split)
            if found is None and split == "train":
                names = ", ".join(n.format(split="train") for n in AUTO_NAMES)
                raise LightclsError(f"data.train_list=auto: none of {names} in {root}; name the file")
            if found is not None:
                given[split] = found
        elif path:
            given[split] = Path(str(path)).expanduser()
    return given


def _read_split_layout(root: Path, val_fraction: float, seed: int, listed_train: bool) -> Layout:
    dirs = {split: _find_split_dir(root, names) for split, names in SPLIT_DIRS.items()}
    if dirs["train"] is None and listed_train:
        classes = _read_classes(root, root) if (root / "classes.txt").is_file() else []  # or the list's
        return Layout(root, classes, {"train": [], "val": [], "test": []})
    if dirs["train"] is None:
        return _plain_tree(root, val_fraction, seed)
    classes = _read_classes(root, dirs["train"])
    listing = root / "train.txt"
    if listing.is_file():
        splits = {"train": _read_listing(listing, dirs["train"], classes)}
    else:
        splits = {"train": _scan(dirs["train"], classes, root / "classes.txt")}
    counts = _counts(splits["train"], len(classes))
    empty = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if empty:
        source = root / "classes.txt"
        raise LightclsError(f"{source}: class {empty[0]!r} has no images in {dirs['train']}")
    for split in ("val", "test"):
        folder = dirs[split]
        if folder is None:
            splits[split] = []
            continue
        listing = root / f"{split}.txt"
        if listing.is_file():
            splits[split] = _read_listing(listing, folder, classes)
        else:
            splits[split] = _scan(folder, classes, root / "classes.txt")
    return Layout(root, classes, splits)


def _find_split_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def _images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted; hidden files and other suffixes ignored."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_classes(root: Path, train_dir: Path) -> list[str]:
    """Class names from classes.txt (line i is label i), else the sorted training folder names."""
    path = root / "classes.txt"
    if not path.is_file():
        classes = _class_dirs(train_dir)
        if not classes:
            raise LightclsError(f"{train_dir}: no class folders; {expected_layout(root)}")
        return classes
    classes = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if name in classes:
            raise LightclsError(f"{path}:{number}: class {name!r} is listed twice")
        classes.append(name)
    if not classes:
        raise LightclsError(f"{path}: no class names in it")
    return classes


def _scan(folder: Path, classes: list[str], classes_file: Path) -> list[Sample]:
    """(file, label) for every image in `folder`/<class>/; a folder that is not a class is an error."""
    samples: list[Sample] = []
    for name in _class_dirs(folder):
        if name not in classes:
            raise LightclsError(
                f"{folder / name}: folder is not a class named in {classes_file} "
                f"(classes: {', '.join(classes)})"
            )
        label = classes.index(name)
        samples.extend((path, label) for path in _images(folder / name))
    return samples


def _read_listing(listing: Path, folder: Path, classes: list[str]) -> list[Sample]:
    """Samples from a `val.txt`-style file: '<class>/<file> <label>' per line, relative to `folder` (a
    path's first folder must be its label's class)."""
    return read_annotations(listing, classes, folder=folder, class_folders=True).samples


def _counts(samples: list[Sample], num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for _, label in samples:
        counts[label] += 1
    return counts


def split_sizes(n: int, val: float, test: float) -> tuple[int, int]:
    """Val and test sizes for a class of `n`: rounded half up, at least 1 each if n allows; train >= 1."""
    fractions = (val, test)
    sizes = [math.floor(n * f + 0.5) for f in fractions]
    if n >= 1 + sum(f > 0 for f in fractions):
        sizes = [max(s, 1) if f > 0 else s for s, f in zip(sizes, fractions, strict=True)]
    while sum(sizes) > n - 1:  # training keeps at least one image of every class
        sizes[0 if sizes[0] > sizes[1] else 1] -= 1
    return sizes[0], sizes[1]


def _plain_tree(root: Path, val_fraction: float, seed: int) -> Layout:
    """Class folders with no split: split each class seeded, and reuse the split written last time."""
    classes = _class_dirs(root)
    if not classes or not any(_images(root / c) for c in classes):
        raise LightclsError(f"no images found under {root}: {expected_layout(root)}")
    record = root / SPLIT_FILE
    if record.is_file():
        saved = json.loads(record.read_text(encoding="utf-8"))
        splits = {
            split: [(root / rel, classes.index(Path(rel).parts[0])) for rel in files]
            for split, files in saved["splits"].items()
        }
        return Layout(root, saved["classes"], {"test": [], **splits})

    found = {name: _images(root / name) for name in classes}
    for name, files in found.items():
        if not files:
            folder = root / name
            why = "cannot be read" if not os.access(folder, os.R_OK | os.X_OK) else "holds no images"
            raise LightclsError(
                f"{folder}: class folder {name!r} {why}; each class folder of {root} needs images "
                "(or remove it)"
            )
    rng = random.Random(seed)
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        files = found[name]
        rng.shuffle(files)
        n_val, _ = split_sizes(len(files), val_fraction, 0.0)
        splits["val"].extend((p, label) for p in files[:n_val])
        splits["train"].extend((p, label) for p in files[n_val:])
    payload = {
        "seed": seed,
        "val_fraction": val_fraction,
        "classes": classes,
        "splits": {s: [p.relative_to(root).as_posix() for p, _ in v] for s, v in splits.items()},
    }
    try:
        record.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        log.info("no split folders in %s: made a seeded split, written to %s", root, record)
    except OSError:
        log.warning("no split folders in %s: made a seeded split (could not write %s)", root, record)
    return Layout(root, classes, splits)
