"""Hugging Face data sets (data=hf data.name=...): a Hub id, a `save_to_disk` folder, parquet files or any
folder `datasets.load_dataset` reads, through the `datasets` library, written once as a split folder
(lightcls.data.materialize): the image and label columns found from the features (or named), the splits
mapped (train, validation/val, test; a val split seeded from train when there is none), encoded images
kept as their bytes. A label column holding a list of labels per image (a list of ClassLabel) makes a
multi-label set: its images in images/<split>/ and a CSV per split naming their classes."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lightcls.data.materialize import (
    LABEL_DELIM,
    SplitFolderWriter,
    WrittenDataModule,
    check_written,
    read_record,
    written_folder,
)
from lightcls.errors import LightclsError, one_line

log = logging.getLogger(__name__)

#: split names looked for when data.val_split / data.test_split are null, in this order
VAL_NAMES = ("validation", "valid", "val", "dev")
TEST_NAMES = ("test",)
#: column names preferred when the features leave a choice
IMAGE_NAMES = ("image", "img")
LABEL_NAMES = ("label", "labels")


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise LightclsError("data=hf needs the datasets package: pip install 'lightcls[hf]'") from None
    return datasets


def _is_saved(path: Path) -> bool:
    """True for a folder `save_to_disk` wrote (a DatasetDict's or a Dataset's)."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def open_source(name: str, revision: str | None, subset: str | None, streaming: bool) -> dict[str, Any]:
    """The splits of `name` (split name -> Dataset or IterableDataset): a `save_to_disk` folder, parquet
    files, a folder `load_dataset` reads (image folder, parquet, csv...), else a Hub id."""
    datasets = _datasets()
    path = Path(name).expanduser()
    try:
        if path.is_dir() and _is_saved(path):
            found = datasets.load_from_disk(str(path))
        elif name.endswith(".parquet"):
            found = datasets.load_dataset("parquet", data_files=str(path), streaming=streaming)
        elif path.is_dir():
            found = datasets.load_dataset(str(path), subset, streaming=streaming)
        else:
            found = datasets.load_dataset(name, subset, revision=revision, streaming=streaming)
    except Exception as err:  # noqa: BLE001  (missing files, no network, an unknown id: all one line)
        raise LightclsError(f"data.name={name}: `datasets` cannot load it ({one_line(str(err))})") from None
    if isinstance(found, datasets.Dataset | datasets.IterableDataset):
        return {"train": found}
    return dict(found)


def _is_list(feature: Any) -> bool:
    """True for a list feature (datasets.List, or Sequence before datasets 4)."""
    datasets = _datasets()
    return isinstance(feature, (getattr(datasets, "List", datasets.Sequence), datasets.Sequence))


def _kind(feature: Any) -> str:
    """ "image", "label" (a ClassLabel), "labels" (a list of them) or "" for one column's feature."""
    datasets = _datasets()
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.ClassLabel):
        return "label"
    return "labels" if _is_list(feature) and _kind(getattr(feature, "feature", None)) == "label" else ""


def find_columns(
    features: Any, image_column: str | None, label_column: str | None, name: str
) -> tuple[str, str, bool]:
    """The image and label columns, and whether the label column holds a list of labels per image (multi-
    label): those named, else found from the features (a datasets.Image; a ClassLabel or a list of them),
    else the usual names; one line listing the columns when they cannot be."""
    columns = list(features)
    listed = f"(its columns: {', '.join(columns)})"
    for key, given in (("image_column", image_column), ("label_column", label_column)):
        if given is not None and given not in columns:
            raise LightclsError(f"data.{key}={given}: not a column of {name} {listed}")
    kinds = {column: _kind(features[column]) for column in columns}
    image = image_column or _pick([c for c in columns if kinds[c] == "image"], IMAGE_NAMES, columns, "image")
    labelled = [c for c in columns if kinds[c] in ("label", "labels")]
    label = label_column or _pick(labelled, LABEL_NAMES, columns, "label")
    return image, label, _is_list(features[label])


def _pick(found: list[str], usual: Sequence[str], columns: list[str], what: str) -> str:
    """The one column of `found`, or of the usual names; else one line saying what to name."""
    preferred = [c for c in found if c in usual] or [c for c in usual if c in columns and not found]
    chosen = found if len(found) == 1 else preferred[:1]
    if len(chosen) == 1:
        return chosen[0]
    why = f"several {what} columns ({', '.join(found)})" if found else f"no {what} column"
    raise LightclsError(
        f"data.{what}_column: {why} among {', '.join(columns)}; name it with data.{what}_column=COLUMN"
    )


def map_splits(
    available: list[str], train: str, val: str | None, test: str | None, name: str
) -> dict[str, str]:
    """lightcls split -> the source's split: those named, else the usual names (val may be left to a
    seeded split, test to none)."""
    listed = f"(its splits: {', '.join(available)})"
    chosen = {"train": train, "val": val, "test": test}
    for split, given in chosen.items():
        if given is not None and given not in available:
            raise LightclsError(f"data.{split}_split={given}: {name} has no such split {listed}")
    chosen["val"] = val or next((s for s in VAL_NAMES if s in available), None)
    chosen["test"] = test or next((s for s in TEST_NAMES if s in available), None)
    return {split: source for split, source in chosen.items() if source is not None}


def short_name(name: str) -> str:
    """A data set's name in logs and folder names: a local path's last part (no suffix), a Hub id's
    `owner_name`."""
    local = Path(name)
    short = local.stem if local.exists() else name.strip("/").replace("/", "_")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", short).strip("_.")[-60:] or "dataset"


def default_folder(source: dict[str, Any]) -> str:
    """`<short name>-<8 hex digits of the source>`: one folder per data set, revision and subset."""
    digest = hashlib.sha1(json.dumps(source, sort_keys=True).encode()).hexdigest()[:8]
    return f"{short_name(source['hf'])}-{digest}"


class HFDataModule(WrittenDataModule):
    """A Hugging Face data set, trained on as the split folder written from it once (`folder`, default
    `<root>/<name>-<hash>`).

    Its own arguments, after the split folder's (lightcls.data.SplitFolderDataModule; `val_fraction` and
    `split_seed` seed a val split when the source has none):

    Args:
        root: where written split folders go (or the written folder itself, as a checkpoint records it).
        name: a Hub id, a `save_to_disk` folder, a parquet file (or glob) or a folder `load_dataset` reads.
        revision, subset: the Hub revision (branch, tag, commit) and configuration name.
        image_column, label_column: the columns to read (null: found from the features).
        train_split, val_split, test_split: the source's split names (val, test null: validation/valid/val/
            dev and test when present).
        streaming: read a Hub set as it streams in, without first downloading all of it.
        folder: where the split folder is written (default `<root>/<name>-<hash>`).
    """

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        name: str | None = None,
        revision: str | None = None,
        subset: str | None = None,
        image_column: str | None = None,
        label_column: str | None = None,
        train_split: str = "train",
        val_split: str | None = None,
        test_split: str | None = None,
        streaming: bool = False,
        folder: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not name:
            raise LightclsError(
                "data.name is required: pass data.name=<Hub id | save_to_disk folder | parquet>"
            )
        if not isinstance(streaming, bool):
            raise LightclsError(f"data.streaming must be true or false, got {streaming!r}")
        local = Path(name).expanduser()
        self.source_name = str(local.resolve()) if local.exists() else name
        self.source = {"hf": self.source_name, "revision": revision, "subset": subset}
        self.columns = (image_column, label_column)
        self.split_names = (train_split, val_split, test_split)
        self.streaming = streaming
        target = written_folder(Path(root).expanduser(), folder, default_folder(self.source), self.source)
        super().__init__(
            str(target), image_size, channels, mean, std, name=short_name(self.source_name), **kwargs
        )
        self.hparams["name"] = self.source_name  # a local path, absolute: a checkpoint finds it from anywhere
        self.settings = {
            "image_column": image_column,
            "label_column": label_column,
            "train_split": train_split,
            "val_split": val_split,
            "test_split": test_split,
            "val_fraction": self.val_fraction,
            "split_seed": self.split_seed,
        }
        try:
            written = check_written(self.root, self.source, self.settings)
        except LightclsError:
            self.plan  # noqa: B018  (a wrong column or split name says so first)
            raise
        # the columns and splits of a folder not written yet are checked here, before any run starts
        multilabel = read_record(self.root).get("multilabel", False) if written else self.plan[2]
        if multilabel:  # the images in images/, a CSV per split naming their labels
            self.lists = {split: "auto" for split in self.lists}
            self.label_delim = LABEL_DELIM
            self.hparams.update({f"{split}_list": "auto" for split in self.lists}, label_delim=LABEL_DELIM)

    @cached_property
    def opened(self) -> dict[str, Any]:
        """The source's splits, loaded (or opened to stream) once."""
        return open_source(self.source_name, self.source["revision"], self.source["subset"], self.streaming)

    @cached_property
    def plan(self) -> tuple[str, str, bool, dict[str, str]]:
        """The image column, the label column, whether it is multi-label, lightcls split -> source split."""
        splits = map_splits(list(self.opened), *self.split_names, self.source_name)
        features = self.opened[splits["train"]].features
        if features is None:
            raise LightclsError(
                f"data.name={self.source_name}: its features are unknown until read (streamed without "
                "metadata); name data.image_column and data.label_column, or use data.streaming=false"
            )
        return (*find_columns(features, *self.columns, self.source_name), splits)

    def write(self, writer: SplitFolderWriter) -> list[str] | None:
        """Every labelled image of the mapped splits (images without a label are left out, and counted)."""
        image, label, _, splits = self.plan
        classes = None
        for split, source in splits.items():
            features = self.opened[source].features or {}
            if label not in features:  # e.g. a test split published without its labels
                log.warning("%s: split %s has no column %s: left out", self.name, source, label)
                continue
            rows = self._rows(self.opened[source], image, label)
            feature = features[label]
            names = getattr(getattr(feature, "feature", feature), "names", None)  # a ClassLabel's (or list's)
            classes = classes or names
            unlabelled = 0
            for i, (data, value) in enumerate(rows):
                if value is None or value == -1:
                    unlabelled += 1
                    continue
                writer.add(split, f"{i:08d}", _label(value, names), data)
            if unlabelled:
                log.warning(
                    "%s: %d images of split %s have no label: left out", self.name, unlabelled, source
                )
        return classes

    def _rows(self, dataset: Any, image: str, label: str) -> Any:
        """(image, label) of each row: an encoded image's bytes (undecoded), or an array."""
        datasets = _datasets()
        dataset = dataset.select_columns([image, label])
        encoded = isinstance(dataset.features[image], datasets.Image)
        if encoded:
            dataset = dataset.cast_column(image, datasets.Image(decode=False))
        for row in dataset:
            yield (_image_bytes(row[image]) if encoded else np.asarray(row[image])), row[label]


def _label(value: Any, names: list[str] | None) -> str | list[str]:
    """A row's class name (or names, for a list of labels): a ClassLabel's name, else the value as text."""
    if isinstance(value, list | tuple):
        return [str(_label(v, names)) for v in sorted(set(value))]
    return names[value] if names else str(value)


def _image_bytes(value: dict[str, Any]) -> bytes:
    """An undecoded datasets.Image value's bytes (read from its path when only that is stored)."""
    if value.get("bytes") is not None:
        return value["bytes"]
    return Path(value["path"]).read_bytes()
