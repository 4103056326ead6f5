"""A photo-like RGB split-folder set from scikit-learn's digits: colour, scale, position and background vary.

    from colour_digits import make_colour_digits
    make_colour_digits(Path("/tmp/colour-digits"), n_train=4000, n_val=1000)

Each image draws one of the 1,797 8x8 digits (train and val from disjoint halves of them, so val measures
generalization to unseen handwriting), upscales it smoothly to 45-90% of a canvas 28-64 px wide, places it
at a random position on a random two-colour gradient with noise and 2-4 stray strokes, in a random ink
colour darker than the background, and saves a JPEG (quality 85-95). Nothing is downloaded: the digits
ship with scikit-learn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

LUMA = np.array([0.299, 0.587, 0.114])  # brightness of an RGB colour (ITU-R 601)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A gradient between two nearby colours in a random direction, with pixel noise."""
    while True:  # bright enough for a darker ink
        a = rng.uniform(0, 255, 3)
        if a @ LUMA > 130:
            break
    b = (a + rng.uniform(-40, 40, 3)).clip(0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (np.cos(angle) * xx + np.sin(angle) * yy + 1.5) / 3
    return a * (1 - t[..., None]) + b * t[..., None] + rng.normal(0, 6, (size, size, 3))


def _ink(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """An ink colour at least 90 (of 255) darker than the background, as ink on paper."""
    level = float(background.reshape(-1, 3).mean(0) @ LUMA)
    while True:
        ink = rng.uniform(0, 255, 3)
        if float(ink @ LUMA) < level - 90:
            return ink


def _clutter(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Two to four straight strokes in inks darker than the background: things that are not the digit."""
    size = len(canvas)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(2, 5))):
        (x0, y0), (x1, y1) = rng.uniform(0, size, (2, 2))
        length = max(np.hypot(x1 - x0, y1 - y0), 1e-6)
        # distance of every pixel to the segment, for a soft stroke about 1.5 px wide
        t = (((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0)) / length**2).clip(0, 1)
        distance = np.hypot(xx - (x0 + t * (x1 - x0)), yy - (y0 + t * (y1 - y0)))
        alpha = (1.5 - distance).clip(0, 1)[..., None] * rng.uniform(0.3, 0.7)
        canvas[:] = canvas * (1 - alpha) + _ink(rng, canvas) * alpha


def draw(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One 8x8 digit (values 0-16) drawn as a colour photo-like picture."""
    size = int(rng.integers(28, 65))
    side = max(6, int(size * rng.uniform(0.45, 0.9)))
    glyph = Image.fromarray(np.uint8(digit * 15.9)).resize((side, side), Image.BICUBIC)
    alpha = np.asarray(glyph, dtype=np.float32)[..., None] / 255
    canvas = _background(rng, size)
    _clutter(canvas, rng)
    top, left = (int(rng.integers(0, size - side + 1)) for _ in range(2))
    window = canvas[top : top + side, left : left + side]
    canvas[top : top + side, left : left + side] = window * (1 - alpha) + _ink(rng, canvas) * alpha
    return Image.fromarray(np.uint8(canvas.clip(0, 255)))


def make_colour_digits(
    root: Path, n_train: int = 4000, n_val: int = 1000, seed: int = 0, gray: bool = False
) -> Path:
    """Write the set to `root` (training_set/, val_set/, classes.txt) unless it is there already; `gray`:
    the same pictures as grayscale PNGs instead of colour JPEGs."""
    from sklearn.datasets import load_digits

    if (root / "classes.txt").is_file():
        return root
    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.images))
    half = len(order) // 2
    sources = {"training_set": (order[:half], n_train), "val_set": (order[half:], n_val)}
    for split, (pool, count) in sources.items():
        for i in range(count):
            k = int(pool[rng.integers(len(pool))])
            folder = root / split / str(digits.target[k])
            folder.mkdir(parents=True, exist_ok=True)
            picture, quality = draw(digits.images[k], rng), int(rng.integers(85, 96))
            if gray:
                picture.convert("L").save(folder / f"{i:05d}.png")
            else:
                picture.save(folder / f"{i:05d}.jpg", quality=quality)
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in range(10)))
    return root


def train_on(root: Path, run_dir: Path, extra: list[str], size: int = 32) -> dict:
    """`python train.py` on the set at `size` px (batch 64, no flips: a mirrored digit is another), CPU, no
    report or logger, in `run_dir`, with `extra` overrides; its metrics.json (metrics.csv is in `run_dir`)."""
    args = [
        f"data.root={root}",
        "data=folder",
        f"data.image_size={size}",
        "data.batch_size=64",
        "data.hflip=0",
    ]
    args += ["trainer=cpu", "report=false", "logger=none", f"hydra.run.dir={run_dir}", *extra]
    train_py = Path(__file__).resolve().parents[1] / "train.py"
    done = subprocess.run([sys.executable, str(train_py), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"train.py {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text())
