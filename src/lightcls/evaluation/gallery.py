"""A gallery of mistakes: per class, the most confident wrong predictions as an image grid, and the most
confused class pairs (mmpretrain's analyze_results, as pictures)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageOps

from lightcls.evaluation.fonts import caption_font
from lightcls.files import PNG, write_json

TILE = 128


def find_mistakes(
    samples: Sequence[tuple[Path, int]],
    probs: torch.Tensor,
    classes: Sequence[str],
    root: Path,
    right: bool = False,
) -> dict[str, Any]:
    """The wrong predictions per true class, most confident first; the confused pairs, most frequent first;
    with `right`, also the least confident right ones per class."""
    scores, preds = probs.max(dim=1)
    under = _under(root)
    wrong: dict[str, list[dict[str, Any]]] = {}
    unsure: dict[str, list[dict[str, Any]]] = {}
    pairs: Counter[tuple[str, str]] = Counter()
    for (file, label), pred, score in zip(samples, preds.tolist(), scores.tolist(), strict=True):
        item = {
            "file": under(file),
            "true_class": classes[label],
            "pred_class": classes[pred],
            "score": score,
        }
        if pred != label:
            wrong.setdefault(classes[label], []).append(item)
            pairs[classes[label], classes[pred]] += 1
        elif right:
            unsure.setdefault(classes[label], []).append(item)
    for items in wrong.values():
        items.sort(key=lambda i: -i["score"])
    for items in unsure.values():
        items.sort(key=lambda i: i["score"])
    result: dict[str, Any] = {
        "wrong": {c: wrong[c] for c in classes if c in wrong},
        "confused_pairs": [
            {"true_class": t, "pred_class": p, "count": n}
            for (t, p), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }
    if right:
        result["least_confident_right"] = {c: unsure[c] for c in classes if c in unsure}
    return result


def find_label_mistakes(
    samples: Sequence[tuple[Path, Sequence[int]]],
    probs: torch.Tensor,
    predicted: torch.Tensor,
    classes: Sequence[str],
    root: Path,
) -> dict[str, Any]:
    """A multi-label model's worst images (the most missed and spurious labels, then the largest gaps
    between score and truth), as `find_mistakes` gives them, under one heading: `worst`."""
    items, under = [], _under(root)
    for (file, labels), row, hits in zip(samples, probs.tolist(), predicted.tolist(), strict=True):
        truth = set(labels)
        said = {i for i, hit in enumerate(hits) if hit}
        missed, spurious = sorted(truth - said), sorted(said - truth)
        if not missed and not spurious:
            continue
        gap = max(abs(row[i] - (i in truth)) for i in (*missed, *spurious))
        items.append(
            {
                "file": under(file),
                "true_class": " ".join(classes[i] for i in sorted(truth)) or "-",
                "pred_class": " ".join(classes[i] for i in sorted(said)) or "-",
                "score": gap,
                "missed": [classes[i] for i in missed],
                "spurious": [classes[i] for i in spurious],
            }
        )
    items.sort(key=lambda i: (-(len(i["missed"]) + len(i["spurious"])), -i["score"]))
    return {"wrong": {"worst": items} if items else {}, "confused_pairs": []}


def _under(root: Path) -> Callable[[Path], str]:
    """A file's path under `root` with / separators (as given, where it is elsewhere); by string, as
    pathlib's relative_to took 0.2 ms a file."""
    prefix = str(root).rstrip(os.sep) + os.sep

    def relative(file: Path) -> str:
        text = str(file)
        return (text[len(prefix) :] if text.startswith(prefix) else text).replace(os.sep, "/")

    return relative


def write_gallery(mistakes: dict[str, Any], root: Path, folder: Path, per_class: int = 16) -> list[Path]:
    """`mistakes.json` and one grid PNG per class (`wrong_<class>.png`, `right_<class>.png`) in `folder`
    (grids left from an earlier evaluation into it removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("wrong_*.png"), *folder.glob("right_*.png")]:
        old.unlink()
    write_json(folder / "mistakes.json", mistakes)
    written = []
    for kind, key in (("wrong", "wrong"), ("right", "least_confident_right")):
        for name, items in mistakes.get(key, {}).items():
            path = folder / f"{kind}_{safe_name(name)}.png"
            written.append(grid([root / i["file"] for i in items[:per_class]], items[:per_class], path))
    return written


def grid(files: Sequence[Path], items: Sequence[dict[str, Any]], path: Path, columns: int = 8) -> Path:
    """Images in a grid of TILE px tiles, each captioned with its true and predicted class and score."""
    rows = (len(files) + columns - 1) // columns
    canvas = Image.new("RGB", (min(len(files), columns) * TILE, rows * (TILE + 30)), (255, 255, 255))
    font = caption_font(11)
    draw = ImageDraw.Draw(canvas)
    for n, (file, item) in enumerate(zip(files, items, strict=True)):
        x, y = (n % columns) * TILE, (n // columns) * (TILE + 30)
        with Image.open(file) as img:
            img.draft("RGB", (TILE, TILE))  # a JPEG decodes at 1/2..1/8 scale, still >= the tile
            tile = ImageOps.pad(ImageOps.exif_transpose(img).convert("RGB"), (TILE - 4, TILE - 4))
        canvas.paste(tile, (x + 2, y + 2))
        if "missed" in item:  # a multi-label image: the labels it missed, and those it added
            first = f"missed {' '.join(item['missed']) or '-'}"
            second = f"spurious {' '.join(item['spurious']) or '-'}"
        else:
            first, second = f"true {item['true_class']}", f"pred {item['pred_class']} {item['score']:.2f}"
        draw.text((x + 2, y + TILE), first, fill=(0, 0, 0), font=font)
        draw.text((x + 2, y + TILE + 14), second, fill=(200, 0, 0), font=font)
    canvas.save(path, **PNG)
    return path


def safe_name(name: str) -> str:
    """A class name as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
