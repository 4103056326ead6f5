"""Annotation files that choose a split's images and their labels, each read as its tool writes it:

- `path label` lines (PaddleClas's train_list.txt, mmpretrain's ann_file), one class index per image;
- `path i,j` lines: several class indices per image (multi-label);
- `path<TAB>0,1,0,...` lines: PaddleClas's multi-label lists, a multi-hot vector per image;
- `.csv` with a header, `filename,labels` (fastai/Kaggle): labels are class names split by `label_delim`;
- `.json` as mmpretrain writes it: `{"metainfo": {"classes": [...]}, "data_list": [{"img_path": ...,
  "gt_label": i or [i, j]}]}`.

Paths are relative to the file's folder (or absolute). A file in a multi-label format makes the data set
multi-label: its labels are tuples of class indices (empty: an image with none of the classes).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightcls.errors import LightclsError

Label = int | tuple[int, ...]

FILE_COLUMNS = ("filename", "file", "image", "image_id", "img_path", "path", "fname", "name", "id")
LABEL_COLUMNS = ("labels", "label", "tags", "tag", "classes", "class", "gt_label")


#: what `auto` looks for beside the images, per split, in this order (fastai, mmpretrain, PaddleClas, lists)
AUTO_NAMES = ("{split}.csv", "{split}.json", "{split}_list.txt", "{split}.txt")


def find_annotation_file(root: Path, split: str) -> Path | None:
    """`split`'s annotation file in `root` (the first of AUTO_NAMES there), or None."""
    return next(
        (root / n.format(split=split) for n in AUTO_NAMES if (root / n.format(split=split)).is_file()), None
    )


@dataclass(frozen=True)
class Annotations:
    """One annotation file: its (file, label) samples, whether it is multi-label, the classes it names."""

    samples: list[tuple[Path, Label]]
    multilabel: bool
    classes: list[str] | None = None


def read_annotations(
    listing: Path,
    classes: list[str] | None,
    label_delim: str | None = None,
    folder: Path | None = None,
    class_folders: bool = False,
) -> Annotations:
    """The samples of one annotation file (its format from its suffix and lines), paths relative to `folder`
    (default: the file's); `classes` None: the file must name them (mmpretrain's metainfo, a CSV's labels).
    With `class_folders`, a single-label path's first folder must be its label's class."""
    if not listing.is_file():
        raise LightclsError(f"{listing}: no such list file")
    base = folder or listing.parent
    suffix = listing.suffix.lower()
    if suffix == ".json":
        return _read_json(listing, base, classes)
    if suffix == ".csv":
        return _read_csv(listing, base, classes, label_delim)
    if classes is None:
        raise LightclsError(
            f"{listing.parent}/classes.txt: needed with {listing.name} (line i of classes.txt names label i)"
        )
    return _read_lines(listing, base, classes, class_folders)


def _image(base: Path, where: str, rel: str) -> Path:
    """The image a line names (relative to `base`), which must exist."""
    rel = rel.strip()
    if not rel:
        raise LightclsError(f"{where}: no image path")
    path = Path(rel) if Path(rel).is_absolute() else base / rel
    if not path.is_file():
        raise LightclsError(f"{where}: file {path} does not exist")
    return path


def _index(where: str, text: str, classes: list[str]) -> int:
    text = text.strip()
    if not text.lstrip("-").isdigit():
        raise LightclsError(f"{where}: label {text!r} is not a class index")
    label = int(text)
    if not 0 <= label < len(classes):
        raise LightclsError(f"{where}: label {label} is not in 0..{len(classes) - 1}")
    return label


def _read_lines(listing: Path, base: Path, classes: list[str], class_folders: bool) -> Annotations:
    samples: list[tuple[Path, Label]] = []
    multilabel = False
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{listing}:{number}"
        if "\t" in line.strip():  # PaddleClas: path<TAB>multi-hot vector (or one index)
            rel, _, text = line.strip().partition("\t")
            values = [v.strip() for v in text.split(",")]
            if len(values) == 1 and len(classes) > 1:
                samples.append((_image(base, where, rel), _index(where, values[0], classes)))
                continue
            if len(values) != len(classes) or any(v not in ("0", "1") for v in values):
                raise LightclsError(
                    f"{where}: expected a multi-hot vector of {len(classes)} 0/1 values "
                    f"(one per class), got {text.strip()!r}"
                )
            samples.append((_image(base, where, rel), tuple(i for i, v in enumerate(values) if v == "1")))
            multilabel = True
            continue
        rel, _, text = line.strip().rpartition(" ")
        if not rel or not text:
            raise LightclsError(
                f"{where}: expected '<file> <label>' or '<file> <i>,<j>', got {line.strip()!r}"
            )
        if "," in text:
            indices = tuple(sorted({_index(where, t, classes) for t in text.split(",") if t.strip()}))
            samples.append((_image(base, where, rel), indices))
            multilabel = True
            continue
        label = _index(where, text, classes)
        path = _image(base, where, rel)
        folder_class = Path(rel.strip()).parts[0] if len(Path(rel.strip()).parts) > 1 else None
        if class_folders and folder_class is not None and folder_class != classes[label]:
            raise LightclsError(
                f"{where}: label {label} ({classes[label]!r}) disagrees with folder {folder_class!r}"
            )
        samples.append((path, label))
    if multilabel:
        samples = [(p, (label,) if isinstance(label, int) else label) for p, label in samples]
    return Annotations(samples, multilabel)


def _read_csv(listing: Path, base: Path, classes: list[str] | None, delim: str | None) -> Annotations:
    with listing.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise LightclsError(f"{listing}: empty; expected a header 'filename,labels' and one row per image")
    header = [h.strip().lower() for h in rows[0]]
    file_col = next((header.index(n) for n in FILE_COLUMNS if n in header), None)
    label_col = next((header.index(n) for n in LABEL_COLUMNS if n in header), None)
    if file_col is None or label_col is None or len(header) < 2:
        raise LightclsError(
            f"{listing}:1: expected a header naming the file and labels columns (e.g. 'filename,labels'), "
            f"got {','.join(rows[0])!r}"
        )
    parsed: list[tuple[str, Path, list[str]]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{listing}:{number}"
        if len(row) <= max(file_col, label_col):
            raise LightclsError(f"{where}: expected {len(header)} columns, got {len(row)}: {','.join(row)!r}")
        names = [n.strip() for n in row[label_col].split(delim or None) if n.strip()]
        parsed.append((where, _image(base, where, row[file_col]), names))
    found = sorted({n for _, _, names in parsed for n in names})
    known = classes if classes is not None else found
    samples: list[tuple[Path, Label]] = []
    for where, path, names in parsed:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LightclsError(f"{where}: label {unknown[0]!r} is not a class (classes: {', '.join(known)})")
        samples.append((path, tuple(sorted({known.index(n) for n in names}))))
    return Annotations(samples, True, None if classes is not None else found)


def _read_json(listing: Path, base: Path, classes: list[str] | None) -> Annotations:
    try:
        payload: Any = json.loads(listing.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LightclsError(f"{listing}:{err.lineno}: not valid JSON ({err.msg})") from None
    entries = payload.get("data_list") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise LightclsError(
            f"{listing}: expected mmpretrain's annotation format, "
            '{"metainfo": {"classes": [...]}, "data_list": [{"img_path": ..., "gt_label": ...}]}'
        )
    named = (payload.get("metainfo") or {}).get("classes")
    if named is not None and classes is not None and list(named) != list(classes):
        raise LightclsError(
            f"{listing}: its metainfo classes ({', '.join(map(str, named))}) differ from the data set's "
            f"({', '.join(classes)})"
        )
    known = list(classes if classes is not None else named or [])
    if not known:
        raise LightclsError(f"{listing}: no metainfo.classes in it, and no classes.txt beside it")
    samples: list[tuple[Path, Label]] = []
    multilabel = False
    for i, entry in enumerate(entries):
        where = f"{listing}: data_list[{i}]"
        if not isinstance(entry, dict) or "img_path" not in entry or "gt_label" not in entry:
            raise LightclsError(
                f"{where}: expected {{'img_path': ..., 'gt_label': ...}}, got {entry!r}"[:300]
            )
        path = _image(base, where, str(entry["img_path"]))
        label = entry["gt_label"]
        if isinstance(label, list):
            multilabel = True
            samples.append((path, tuple(sorted({_index(where, str(v), known) for v in label}))))
        else:
            samples.append((path, _index(where, str(label), known)))
    if multilabel:
        samples = [(p, (label,) if isinstance(label, int) else label) for p, label in samples]
    return Annotations(samples, multilabel, None if classes is not None else known)
