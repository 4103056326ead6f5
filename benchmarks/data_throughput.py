"""The data path alone (no model): training images/s per core and in total, five ways, two sets of photos.

    python benchmarks/data_throughput.py [--data /tmp/lightcls-data-bench] [--repeats 3]

Sets (written once into --data from scikit-learn's two sample photos, nothing downloaded): 10,000 JPEGs
at ImageNet size (500x375 and 375x500 crops, jittered, quality 75-95) and 200 phone photos (4000x3000,
detail added as noise, quality 90), 10 class folders each. Every variant gives uint8 224x224 batches of
64 (32 for phone photos) cropped by a RandomResizedCrop (scale 0.08-1) and flipped:

- hand: torchvision ImageFolder, PIL full decode + v2.RandomResizedCrop + flip + PILToTensor (what a
  hand-written loop does);
- reduced: lightcls's folder path without a cache (reduced-scale JPEG decode, then its crop);
- disk cache: data.cache=disk (images resized once to 1.15x 224 = 258, in shards);
- shards: data=streaming from `lightcls-data pack` with its default short_side=256 (the streaming path);
- shards, as stored: data=streaming from shards packed with short_side=0 (the files byte for byte).

Per core: the loader in the main process (num_workers=0), one torch thread. Each variant `--repeats`
times, the order rotated each round, a batch of warm-up first; medians. Total: num_workers = the CPUs.
Cores for 3,000 img/s = 3,000 / the per-core figure.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SETS = {"imagenet": (10_000, 64, 20), "phone": (200, 32, 2)}  # images, batch size, batches timed
CLASSES = 10


def _photo(i: int, phone: bool) -> Image.Image:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(i)
    src = Image.fromarray(photos[i % len(photos)])
    area = rng.uniform(0.4, 1.0)
    w, h = int(src.width * math.sqrt(area)), int(src.height * math.sqrt(area))
    x, y = rng.integers(0, src.width - w + 1), rng.integers(0, src.height - h + 1)
    img = src.crop((x, y, x + w, y + h))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if phone:
        size = (4000, 3000) if rng.random() < 0.7 else (3000, 4000)
        img = img.resize(size, Image.Resampling.BICUBIC)
        noise = rng.normal(0, 6, (size[1], size[0], 3))
        return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    size = (500, 375) if rng.random() < 0.75 else (375, 500)
    img = img.resize(size, Image.Resampling.BICUBIC)
    gain = rng.uniform(0.8, 1.2, 3)
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) * gain, 0, 255).astype(np.uint8))


def _write(job: tuple[Path, int, bool]) -> None:
    root, i, phone = job
    path = root / "train" / f"c{i % CLASSES}" / f"{i:05d}.jpg"
    if not path.exists():
        quality = 90 if phone else int(np.random.default_rng(i).integers(75, 96))
        _photo(i, phone).save(path, quality=quality)


def write_set(root: Path, count: int, phone: bool) -> Path:
    """`count` JPEGs in 10 class folders under `root`/train (kept between runs)."""
    for c in range(CLASSES):
        (root / "train" / f"c{c}").mkdir(parents=True, exist_ok=True)
    with Pool(os.cpu_count()) as pool:
        pool.map(_write, [(root, i, phone) for i in range(count)], chunksize=16)
    return root


def variants(root: Path, shards: Path, full_shards: Path, batch: int) -> dict[str, Callable[[int], Iterable]]:
    """Each variant: workers -> an iterable of (images, labels) batches."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    from lightcls.data import SplitFolderDataModule, StreamingDataModule
    from lightcls.data.augment import RandomHorizontalFlip, RandomResizedCrop

    stats = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

    def augment() -> list:
        return [RandomResizedCrop(224, scale=(0.08, 1.0)), RandomHorizontalFlip(0.5)]

    def hand(workers: int) -> Iterable:
        transform = v2.Compose(
            [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(), v2.PILToTensor()]
        )
        dataset = ImageFolder(str(root / "train"), transform=transform)
        return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)

    def folder(cache: bool | str) -> Callable[[int], Iterable]:
        def make(workers: int) -> Iterable:
            dm = SplitFolderDataModule(
                str(root),
                224,
                3,
                **stats,
                batch_size=batch,
                num_workers=workers,
                augment=augment(),
                cache=cache,
                val_fraction=0.0,
            )
            dm.prepare_data()
            dm.setup_split("train")
            return dm.loader("train", shuffle=True)

        return make

    def streaming(path: Path) -> Callable[[int], Iterable]:
        def make(workers: int) -> Iterable:
            dm = StreamingDataModule(
                str(path),
                image_size=224,
                channels=3,
                **stats,
                batch_size=batch,
                num_workers=workers,
                augment=augment(),
            )
            dm.setup_split("train")
            return dm.loader("train", shuffle=True)

        return make

    return {
        "hand (PIL full decode)": hand,
        "reduced-scale decode": folder(False),
        "disk cache (258 px)": folder("disk"),
        "shards (streaming, 256 px)": streaming(shards),
        "shards, as stored": streaming(full_shards),
    }


def rate(make: Callable[[int], Iterable], workers: int, batches: int) -> float:
    """Images/s over `batches` batches after one warm-up batch."""
    it = iter(make(workers))
    next(it)
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        images += len(next(it)[0])
    seconds = time.perf_counter() - start
    stop = getattr(it, "close", None) or getattr(it, "_shutdown_workers", None)  # workers end here
    if stop is not None:
        stop()
    return images / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/lightcls-data-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    args = parser.parse_args()
    from lightcls.data.shards import has_manifest, pack

    cpus = len(os.sched_getaffinity(0))
    rows = []
    for name in args.sets:
        count, batch, batches = SETS[name]
        root = args.data / name
        start = time.perf_counter()
        write_set(root, count, phone=name == "phone")
        prepared = {"written": time.perf_counter() - start}
        for short_side, out in ((256, args.data / f"{name}-shards"), (0, args.data / f"{name}-shards-full")):
            if not has_manifest(out):
                start = time.perf_counter()
                pack(root, str(out), short_side=short_side, val_fraction=0.0, workers=cpus)
                prepared[f"pack {short_side}"] = time.perf_counter() - start
        makers = variants(root, args.data / f"{name}-shards", args.data / f"{name}-shards-full", batch)
        start = time.perf_counter()
        iter(makers["disk cache (258 px)"](0))  # built once, outside the timing
        prepared["disk cache"] = time.perf_counter() - start
        print(
            f"{name}: {count} images; preparation seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in prepared.items()),
            flush=True,
        )

        torch.set_num_threads(1)
        per_core: dict[str, list[float]] = {k: [] for k in makers}
        keys = list(makers)
        for r in range(args.repeats):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                per_core[key].append(rate(makers[key], 0, batches))
                print(f"  {key}: {per_core[key][-1]:.1f} img/s (1 core)", flush=True)
        torch.set_num_threads(cpus)
        hand = statistics.median(per_core[keys[0]])
        for key in keys:
            core = statistics.median(per_core[key])
            total = rate(makers[key], cpus, min(batches * cpus, count // batch - 2))
            rows.append((name, key, core, core / hand, total, math.ceil(3000 / core)))

    print(f"\n| set | data path | img/s per core | vs hand | img/s, {cpus} workers | cores for 3,000 img/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, key, core, ratio, total, cores in rows:
        print(f"| {name} | {key} | {core:,.1f} | {ratio:.2f}x | {total:,.1f} | {cores:,} |")


if __name__ == "__main__":
    main()
