"""Time `check_dataset` on a 10,000-image folder (64x64 RGB PNGs, 10 classes): first run and cached run,
each in a fresh process, as two training runs would be."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lightcls.data.check import check_dataset


def main(n: int = 10_000) -> None:
    """Build the folder in a temp dir, check it twice, print both timings."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "set"
        for i in range(n):
            split = "training_set" if (i // 10) % 10 < 8 else "val_set"
            folder = root / split / f"c{i % 10}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        for label in ("first", "cached"):
            subprocess.run([sys.executable, __file__, "--check", str(root), label], check=True)


def check(root: Path, label: str) -> None:
    """One timed check, in this process."""
    start = time.perf_counter()
    report = check_dataset(root)
    took = time.perf_counter() - start
    print(f"{label}: {took:.2f} s for {len(report.files)} images ({report.read} read)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:  # the fresh process main() starts
        check(Path(sys.argv[2]), sys.argv[3])
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("images", nargs="?", type=int, default=10_000, help="how many (default 10,000)")
        main(parser.parse_args().images)
