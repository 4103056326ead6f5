"""Val top-1 after the same short training: decoding the files every epoch vs the disk cache vs shards.

    python benchmarks/data_accuracy.py [--epochs 3] [--seeds 0 1]

Data: benchmarks/colour_digits.py's photo-like digits (2,000 train, 500 val from unseen handwriting),
each enlarged to 500x375 with noise added and saved as a JPEG (quality 90): ImageNet-sized files whose
class is learnable. lenet at 64x64, batch 64, no augmentation, AdamW defaults, in this process, one run
per (variant, seed); the folder runs decode every epoch (data.cache=false), the others read images
resized once (the disk cache at 1.15x = 74 px, shards packed at the default short side 256).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colour_digits import make_colour_digits  # noqa: E402


def enlarge(src: Path, dst: Path) -> Path:
    """Every image of `src` at 500x375 with noise, as a JPEG, in the same folders under `dst`."""
    rng = np.random.default_rng(0)
    for path in sorted(src.rglob("*.jpg")):
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        big = np.asarray(
            Image.open(path).convert("RGB").resize((500, 375), Image.Resampling.BICUBIC), np.float32
        )
        Image.fromarray(np.clip(big + rng.normal(0, 5, big.shape), 0, 255).astype(np.uint8)).save(
            out, quality=90
        )
    for text in src.glob("*.txt"):
        (dst / text.name).write_text(text.read_text())
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    from lightcls.config import compose
    from lightcls.data.shards import pack
    from lightcls.tasks import train

    with tempfile.TemporaryDirectory() as tmp:
        root = enlarge(make_colour_digits(Path(tmp) / "small", 2000, 500), Path(tmp) / "photos")
        shards = pack(root, str(Path(tmp) / "shards"))["root"]
        common = [
            "model=lenet",
            "data.image_size=64",
            "data.batch_size=64",
            "augment=none",
            "logger=none",
            f"trainer.max_epochs={args.epochs}",
            "trainer=cpu",
            "callbacks=none",
            "report=false",  # the figures are of training, not of the end-of-run report.html
        ]
        variants = {
            "files decoded every epoch": ["data=folder", f"data.root={root}", "data.cache=false"],
            "disk cache (74 px)": ["data=folder", f"data.root={root}", "data.cache=disk"],
            "shards (256 px)": ["data=streaming", f"data.root={shards}"],
        }
        results: dict[str, list[float]] = {k: [] for k in variants}
        for seed in args.seeds:
            for name, extra in variants.items():
                run = Path(tmp) / f"{name[:5]}-{seed}"
                cfg = compose("train", [*common, *extra, f"seed={seed}", f"paths.output_dir={run}"])
                top1 = train(cfg)["final_val_top1"]
                results[name].append(top1)
                print(f"{name} seed {seed}: val top-1 {top1:.3f}", flush=True)
        print(f"\n| data path | val top-1 per seed ({', '.join(map(str, args.seeds))}) | median |")
        print("| --- | --- | ---: |")
        for name, values in results.items():
            print(f"| {name} | {' / '.join(f'{v:.3f}' for v in values)} | {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
