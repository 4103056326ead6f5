"""A split folder (SPEC §1) written once from another source: torchvision's data sets (standard.py) and
Hugging Face's (hf.py). It is written in a hidden folder beside its target and renamed into place (whole,
or not at all); a val split the source lacks is seeded from train and written down (val.txt), and
lightcls_source.json records the source and the settings that shaped it. Then it is a split folder like
any other: the decode cache, the data check, eval's predictions.csv and the gallery read its files.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from lightcls.data.datamodule import SplitFolderDataModule
from lightcls.data.layout import SPLIT_DIRS, Layout, split_sizes
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)

#: the record of a written split folder: its source, the settings that shaped it, what each split holds
RECORD = "lightcls_source.json"
#: encoded formats kept as they are, and their suffix (anything else is written as PNG)
SUFFIXES = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "BMP": ".bmp",
    "GIF": ".gif",
    "WEBP": ".webp",
    "TIFF": ".tif",
}
#: the folder each split is written to: training_set, val_set, test_set
FOLDERS = {split: names[0] for split, names in SPLIT_DIRS.items()}

ImageData = Image.Image | bytes | np.ndarray
#: a class name, or a multi-label image's class names
Label = str | tuple[str, ...]
#: what separates a multi-label image's class names in its split's CSV (class names may hold spaces)
LABEL_DELIM = "|"


class SplitFolderWriter:
    """Collects a source's images in a hidden folder beside `folder`; `publish` finishes it and renames it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        #: per split, (file name, label) of each image written
        self.rows: dict[str, list[tuple[str, Label]]] = {split: [] for split in FOLDERS}
        self._folders: dict[str, str] = {}

    def add(self, split: str, key: str, label: str | Sequence[str], image: ImageData) -> None:
        """Write one image of `split` (see `place`): encoded bytes as they are, a PIL image or a uint8 array
        as PNG. `label` is a class name, or a list of them (a multi-label image)."""
        data, suffix = encoded(image, f"{split} image {key}")
        label = label if isinstance(label, str) else tuple(label)
        path = self.tmp / self.place(split, f"{key}{suffix}", label)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.rows[split].append((f"{key}{suffix}", label))

    @property
    def multilabel(self) -> bool:
        """True when the images were given lists of class names."""
        return any(not isinstance(label, str) for rows in self.rows.values() for _, label in rows)

    def place(self, split: str, file: str, label: Label) -> str:
        """An image's path in the folder: `<split folder>/<class>/<file>`, or `images/<split>/<file>` for a
        multi-label image (its split's CSV names its classes)."""
        if isinstance(label, str):
            return f"{FOLDERS[split]}/{self.class_folder(label)}/{file}"
        return f"images/{split}/{file}"

    def class_folder(self, name: str) -> str:
        """The folder (and classes.txt line) of class `name`: a path separator in it becomes `_`."""
        if name not in self._folders:
            folder = str(name).strip().replace("/", "_").replace("\\", "_")
            taken = folder in self._folders.values()
            if not folder or folder.startswith(".") or LABEL_DELIM in folder or taken:
                raise LightclsError(
                    f"class name {name!r} cannot be a class folder (empty, hidden, holding {LABEL_DELIM!r}, "
                    "or the same as another's once '/' is replaced)"
                )
            self._folders[name] = folder
        return self._folders[name]

    def publish(
        self,
        classes: list[str] | None,
        source: Mapping[str, Any],
        settings: Mapping[str, Any],
        val_fraction: float,
        seed: int,
    ) -> Path:
        """Seed the val split from train when none was written; write classes.txt (`classes`, or the names
        seen, sorted), the val and test lists (multi-label: a CSV per split) and the record; then move the
        folder into place."""
        seen = {n for rows in self.rows.values() for _, label in rows for n in _names(label)}
        names = classes if classes is not None else _sorted(seen)
        folders = [self.class_folder(n) for n in names]
        official = bool(self.rows["val"])
        if not official and val_fraction > 0:
            self._seed_val(names, val_fraction, seed)
        self.tmp.mkdir(parents=True, exist_ok=True)
        (self.tmp / "classes.txt").write_text("\n".join(folders) + "\n", encoding="utf-8")
        if self.multilabel:
            self._write_csvs()
        else:
            self._write_lists(names)
        record = {
            "source": dict(source),
            "settings": dict(settings),
            "multilabel": self.multilabel,
            "val": "the source's" if official else f"seeded from train ({val_fraction:g}, seed {seed})",
            "counts": {split: len(rows) for split, rows in self.rows.items()},
            "classes": folders,
        }
        (self.tmp / RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.tmp.rename(self.folder)
        except OSError:  # another process finished first
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.folder

    def _write_lists(self, classes: list[str]) -> None:
        """val.txt and test.txt: `<class>/<file> <label>` lines, relative to the split's folder."""
        index = {name: i for i, name in enumerate(classes)}
        for split in ("val", "test"):
            lines = sorted(f"{self.class_folder(n)}/{file} {index[n]}" for file, n in self.rows[split])
            if lines:
                (self.tmp / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _write_csvs(self) -> None:
        """`<split>.csv` for each split: `filename,labels`, class names joined by LABEL_DELIM."""
        for split, rows in self.rows.items():
            if not rows:
                continue
            with (self.tmp / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["filename", "labels"])
                for file, label in sorted(rows):
                    names = LABEL_DELIM.join(self.class_folder(n) for n in _names(label))
                    writer.writerow([self.place(split, file, label), names])

    def _seed_val(self, classes: list[str], val_fraction: float, seed: int) -> None:
        """Move a seeded share of the training images to val: of each class (as layout.py splits a plain
        tree), or of all images for a multi-label set."""
        rng = random.Random(seed)
        train = self.rows["train"]
        groups = [train] if self.multilabel else [[r for r in train if r[1] == name] for name in classes]
        chosen: set[str] = set()
        for rows in groups:
            files = sorted(file for file, _ in rows)
            rng.shuffle(files)
            chosen.update(files[: split_sizes(len(files), val_fraction, 0.0)[0]])
        moved = [row for row in train if row[0] in chosen]
        for file, label in moved:
            target = self.tmp / self.place("val", file, label)
            target.parent.mkdir(parents=True, exist_ok=True)
            (self.tmp / self.place("train", file, label)).rename(target)
        self.rows["val"] = moved
        self.rows["train"] = [row for row in train if row[0] not in chosen]


def _names(label: Label) -> tuple[str, ...]:
    return (label,) if isinstance(label, str) else label


def _sorted(names: set[str]) -> list[str]:
    """Class names sorted, numbers by value (2 before 10)."""
    return sorted(names, key=lambda n: (0, int(n), "") if n.isdigit() else (1, 0, n))


def encoded(image: ImageData, where: str) -> tuple[bytes, str]:
    """The bytes to write for `image` and their suffix: encoded bytes in a format the layout reads kept as
    they are, anything else encoded as PNG."""
    if isinstance(image, bytes):
        try:
            with Image.open(io.BytesIO(image)) as opened:
                if opened.format in SUFFIXES:
                    return image, SUFFIXES[opened.format]
                opened.load()
                image = opened.copy()
        except (UnidentifiedImageError, OSError) as err:
            raise LightclsError(f"{where}: Pillow cannot read it ({err})") from None
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8) if image.dtype != np.uint8 else image)
    if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue(), ".png"


def written_folder(root: Path, folder: str | None, default: str, source: Mapping[str, Any]) -> Path:
    """Where the split folder of `source` is: `folder` when given; `root` itself when it is that folder (the
    root a checkpoint saved); else `root/default`."""
    if folder:
        return Path(folder).expanduser()
    if read_record(root).get("source") == dict(source):
        return root
    return root / default


def check_written(folder: Path, source: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """True when `folder` holds the split folder written from `source` with `settings`, False when it is not
    written yet; a one-line error when it holds anything else."""
    record = read_record(folder)
    if not record:
        if folder.is_dir() and any(folder.iterdir()):
            raise LightclsError(
                f"data.folder={folder}: holds files lightcls did not write (no {RECORD}); choose a new "
                "or empty folder"
            )
        return False
    if record.get("source") != dict(source):
        raise LightclsError(
            f"data.folder={folder}: written from {_shown(record.get('source'))}, not from {_shown(source)}; "
            "choose another data.folder"
        )
    saved = record.get("settings") or {}
    changed = [key for key, value in settings.items() if saved.get(key) != value]
    if changed:
        asked = ", ".join(f"data.{key}={_value(settings[key])}" for key in changed)
        kept = ", ".join(f"data.{key}={_value(saved.get(key))}" for key in changed)
        raise LightclsError(
            f"{asked}: {folder} was written with {kept} ({RECORD}); pass those, or write another copy "
            "with data.folder=NEW_FOLDER (or remove that one)"
        )
    return True


def read_record(folder: Path) -> dict[str, Any]:
    """The record of the split folder written at `folder` (empty when there is none)."""
    path = folder / RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _value(value: Any) -> str:
    """A setting as it is typed on the command line (null, true)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _shown(source: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in dict(source or {}).items())


class WrittenDataModule(SplitFolderDataModule):
    """A split folder written once from another source (a subclass's `write`), then read as any other.

    A subclass sets `source` and `settings` (plain data, compared with the record of a folder written
    before) and `root` (the split folder) before the first `layout`.
    """

    source: dict[str, Any]
    settings: dict[str, Any]

    @cached_property
    def layout(self) -> Layout:
        """The split folder, written first when missing."""
        if not (self.root / RECORD).is_file():
            log.info("writing %s once as a split folder in %s", self.name, self.root)
            writer = SplitFolderWriter(self.root)
            try:
                classes = self.write(writer)
                writer.publish(classes, self.source, self.settings, self.val_fraction, self.split_seed)
            finally:
                shutil.rmtree(writer.tmp, ignore_errors=True)  # what a failure left (published: gone already)
        return super().layout

    def write(self, writer: SplitFolderWriter) -> list[str] | None:
        """Add every image of the source to `writer`; return the class names in label order (None: the
        names written, sorted)."""
        raise NotImplementedError
