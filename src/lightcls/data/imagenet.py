"""ImageNet (ILSVRC-2012) in its own layout: `train/<wnid>/*.JPEG` and the flat `val/` folder, whose labels
come from a ground-truth file. `write_val_list` writes them as the split folder's `val.txt` (SPEC §1: one
`<file> <label>` line per image, relative to val/), after which data=imagenet reads the folder as it is:

    python -c "from lightcls.data.imagenet import write_val_list; write_val_list('data/imagenet')"
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightcls.data.layout import IMAGE_SUFFIXES
from lightcls.errors import LightclsError

#: Kaggle's copy of the validation labels (ImageId,PredictionString: the first word is the wnid)
KAGGLE = "LOC_val_solution.csv"
#: the devkit's: one ILSVRC2012_ID per validation image in file order, mapped to wnids by meta.mat
DEVKIT = "ILSVRC2012_devkit_t12/data"


def write_val_list(root: str | Path) -> Path:
    """Write `root/val.txt` from the ground truth beside `root/val/`: Kaggle's LOC_val_solution.csv, or the
    devkit's ILSVRC2012_validation_ground_truth.txt and meta.mat; labels index the sorted train folders."""
    root = Path(root).expanduser()
    train = root / "train"
    if not train.is_dir():
        raise LightclsError(f"{train}: no such folder (ImageNet's train/<wnid>/ class folders)")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    truth = _ground_truth(root)
    lines = []
    for image in sorted(p for p in (root / "val").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        wnid = truth.get(image.stem)
        if wnid is None or wnid not in classes:
            raise LightclsError(
                f"{image}: {'no ground truth for it' if wnid is None else f'{wnid} is not a class'}"
            )
        lines.append(f"{image.name} {classes.index(wnid)}")
    target = root / "val.txt"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _ground_truth(root: Path) -> dict[str, str]:
    """Validation image stem -> wnid, from whichever ground truth `root` holds."""
    if (root / KAGGLE).is_file():
        with (root / KAGGLE).open(newline="", encoding="utf-8") as f:
            return {row["ImageId"]: row["PredictionString"].split()[0] for row in csv.DictReader(f)}
    devkit = root / DEVKIT
    if (devkit / "meta.mat").is_file():
        import scipy.io

        synsets = scipy.io.loadmat(devkit / "meta.mat", squeeze_me=True)["synsets"]
        wnids = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
        ids = (devkit / "ILSVRC2012_validation_ground_truth.txt").read_text().split()
        return {f"ILSVRC2012_val_{i:08d}": wnids[int(n)] for i, n in enumerate(ids, start=1)}
    raise LightclsError(
        f"{root}: no {KAGGLE} and no {DEVKIT}/meta.mat: the validation labels are in one of them"
    )
