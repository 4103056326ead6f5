"""Decode at reduced scale vs full decode, per core: JPEG decode + resize + RandomResizedCrop.

    python benchmarks/decode_scale.py

Images: scikit-learn's two sample photos (shipped with it, nothing downloaded) written as JPEGs (quality
90) at ImageNet size (500x375, 40 files) and phone-photo size (4000x3000, 6 files). One thread, in the
main process; each variant twice, alternating; prints the median images/s and the ratio:
"full" is `load_image(path, 3)` (what a hand-written loop's PIL decode does), "reduced" is
`load_image(path, 3, min_side=target)` (lightcls's default), both then resized to the target's short side
and cropped by torchvision's v2 RandomResizedCrop.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import v2

from lightcls.data.decode import load_image
from lightcls.data.preprocess import Preprocess


def write_jpegs(folder: Path) -> dict[str, list[Path]]:
    """The two sets of JPEGs, from scikit-learn's sample photos."""
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    sets: dict[str, list[Path]] = {}
    for name, size, count in (("500x375", (500, 375), 40), ("4000x3000", (4000, 3000), 6)):
        sets[name] = []
        for i in range(count):
            path = folder / f"{name}-{i}.jpg"
            photos[i % len(photos)].resize(size, Image.BICUBIC).save(path, quality=90)
            sets[name].append(path)
    return sets


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        sets = write_jpegs(Path(tmp))
        print("| target | JPEG size | full decode img/s | reduced-scale img/s | ratio |")
        print("| ---: | --- | ---: | ---: | ---: |")
        for target in (224, 32):
            crop = v2.RandomResizedCrop(target, antialias=True)
            resize = Preprocess(target, 3, (0.5,) * 3, (0.5,) * 3).resize()
            for name, files in sets.items():
                speeds: dict[str, list[float]] = {"full": [], "reduced": []}
                for variant in ("full", "reduced", "full", "reduced"):
                    start = time.perf_counter()
                    for path in files:
                        crop(resize(load_image(path, 3, None if variant == "full" else target)))
                    speeds[variant].append(len(files) / (time.perf_counter() - start))
                full, reduced = (statistics.median(speeds[k]) for k in ("full", "reduced"))
                print(f"| {target} | {name} | {full:.1f} | {reduced:.1f} | {reduced / full:.2f}x |")


if __name__ == "__main__":
    main()
