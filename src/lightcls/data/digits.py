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
    return _publish(tmp, root)


def _publish(tmp: Path, root: Path) -> Path:
    """Write classes.txt into the finished `tmp` and move it to `root` (whole, or not at all)."""
    (tmp / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


#: Embedded data sets a data config can name (`data.builtin`), written to `data.root` on first use.
BUILTIN = {"digits": write_digits}


#: the annotation files `write_multilabel_digits` writes for each split, one per format
MULTILABEL_FORMATS = {"csv": "{split}.csv", "json": "{split}.json", "paddle": "{split}_paddle.txt"}


def write_multilabel_digits(
    root: str | Path,
    sizes: tuple[int, int, int] = (3000, 600, 600),
    image_size: int = 64,
    seed: int = 0,
) -> Path:
    """A multi-label set from scikit-learn's digits: RGB canvases holding one to three handwritten digits
    (labels: the digits present), with train/val/test annotations as CSV (names), mmpretrain JSON and
    PaddleClas multi-hot lists; each split's canvases use their own digit images. Skip if present."""
    from sklearn.datasets import load_digits

    root = Path(root)
    if (root / "classes.txt").is_file():
        return root
    digits = load_digits()
    glyphs = np.round(digits.images * (255 / 16)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(glyphs))
    pools = np.array_split(order, [int(0.6 * len(order)), int(0.8 * len(order))])
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    for split, count, pool in zip(("train", "val", "test"), sizes, pools, strict=True):
        rows = []
        for i in range(count):
            canvas, labels = _canvas(glyphs, digits.target, pool, image_size, rng)
            rel = f"images/{split}_{i:05d}.png"
            Image.fromarray(canvas, mode="RGB").save(tmp / rel)
            rows.append((rel, labels))
        _write_multilabel_files(tmp, split, rows)
    return _publish(tmp, root)


def _canvas(
    glyphs: np.ndarray, targets: np.ndarray, pool: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """One canvas: a tinted background with one to three digits in non-overlapping cells."""
    background = rng.integers(150, 256, size=3)
    canvas = np.tile(background.astype(np.uint8), (size, size, 1))
    cells = 2  # a 2x2 grid of cells, each digit somewhere inside its own
    cell = size // cells
    chosen = rng.choice(cells * cells, size=int(rng.integers(1, 4)), replace=False)
    labels = set()
    for spot in chosen:
        index = int(rng.choice(pool))
        side = int(rng.integers(cell * 5 // 8, cell + 1))
        glyph = np.asarray(Image.fromarray(glyphs[index]).resize((side, side), Image.BILINEAR), dtype=float)
        ink = rng.integers(0, 110, size=3)
        top = (spot // cells) * cell + int(rng.integers(0, cell - side + 1))
        left = (spot % cells) * cell + int(rng.integers(0, cell - side + 1))
        alpha = (glyph / 255.0)[..., None]
        patch = canvas[top : top + side, left : left + side].astype(float)
        canvas[top : top + side, left : left + side] = (patch * (1 - alpha) + ink * alpha).astype(np.uint8)
        labels.add(int(targets[index]))
    return canvas, sorted(labels)


def _write_multilabel_files(root: Path, split: str, rows: list[tuple[str, list[int]]]) -> None:
    import csv
    import json

    with (root / MULTILABEL_FORMATS["csv"].format(split=split)).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "labels"])
        writer.writerows((rel, " ".join(CLASSES[i] for i in labels)) for rel, labels in rows)
    payload = {
        "metainfo": {"classes": CLASSES},
        "data_list": [{"img_path": rel, "gt_label": labels} for rel, labels in rows],
    }
    (root / MULTILABEL_FORMATS["json"].format(split=split)).write_text(json.dumps(payload))
    lines = [
        f"{rel}\t{','.join('1' if i in labels else '0' for i in range(len(CLASSES)))}" for rel, labels in rows
    ]
    (root / MULTILABEL_FORMATS["paddle"].format(split=split)).write_text("\n".join(lines) + "\n")
