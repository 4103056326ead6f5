"""The embedded default data set: scikit-learn's handwritten digits, written in the split-folder layout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPLITS = {"training_set": 0.70, "val_set": 0.15, "test_set": 0.15}


def write_digits(root: str | Path, seed: int = 0) -> Path:
    """Write the 1797 digits as 8x8 PNGs under `root` (70/15/15 stratified, seeded); skip if present."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root = Path(root)
    if (root / "classes.txt").is_file():
        return root
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    index = np.arange(len(images))
    train, rest = train_test_split(
        index, train_size=SPLITS["training_set"], stratify=digits.target, random_state=seed
    )
    val, test = train_test_split(rest, train_size=0.5, stratify=digits.target[rest], random_state=seed)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for split, ids in zip(SPLITS, (train, val, test), strict=True):
        lines = []
        for i in sorted(ids):
            name = CLASSES[digits.target[i]]
            rel = f"{name}/{i:04d}.png"
            (tmp / split / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(tmp / split / rel)
            lines.append(f"{rel} {digits.target[i]}")
        if split != "training_set":
            (tmp / f"{split.removesuffix('_set')}.txt").write_text("\n".join(lines) + "\n")
    (tmp / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


#: Embedded data sets a data config can name (`data.builtin`), written to `data.root` on first use.
BUILTIN = {"digits": write_digits}
