"""GPU recipe figures: the real train task on one GPU with fp32, bf16-mixed + channels_last, and compile.

    python benchmarks/gpu_recipe.py [--model resnet50] [--images 4000] [--size 224] [--batch 128]

Writes a split-folder set of random-texture JPEGs (10 classes) once, then trains `--epochs` epochs per
variant through `lightcls.tasks.train`, each in a fresh process (no cudnn autotune or compile cache shared
between variants; the decode cache holds the set, so the GPU is what is measured), and prints steady-state
images/s (metrics.json's `train_images_per_second`: the first 5 batches of each epoch excluded) and the
ratios to fp32. The image count is a multiple of the batch, so no odd-sized last batch is timed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightcls.config import compose
from lightcls.tasks import train

VARIANTS = {
    "fp32": ["trainer=gpu", "trainer.precision=32-true", "model.channels_last=false"],
    "bf16": ["trainer=gpu", "model.channels_last=false"],
    "bf16+channels_last": ["trainer=gpu"],
    "bf16+compile": ["trainer=gpu", "model.compile=true"],  # compile picks its own layout
    "ddp(1 gpu)+bf16+channels_last": ["trainer=ddp", "trainer.devices=1"],
}


def make_dataset(root: Path, images: int, size: int, classes: int = 10) -> Path:
    """Random-texture JPEGs whose mean colour depends on the class (learnable), in the split-folder layout."""
    if (root / "classes.txt").is_file():
        return root
    rng = np.random.default_rng(0)
    for split, n in (("training_set", images), ("val_set", images // 8), ("test_set", images // 8)):
        for i in range(n):
            label = i % classes
            base = np.array([label * 25, 255 - label * 25, (label * 70) % 255], dtype=np.float32)
            pixels = np.clip(base + rng.normal(0, 60, (size, size, 3)), 0, 255).astype(np.uint8)
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
    (root / "classes.txt").write_text("".join(f"c{i}\n" for i in range(classes)))
    return root


def run(root: Path, out: Path, name: str, args: argparse.Namespace) -> dict:
    overrides = [
        "data=folder",
        f"data.root={root}",
        f"data.image_size={args.size}",
        f"data.batch_size={args.batch}",
        "data.augment=[{_target_: lightcls.data.augment.RandomHorizontalFlip}]",
        f"model={args.model}",
        f"trainer.max_epochs={args.epochs}",
        "+trainer.enable_progress_bar=false",
        "logger=none",
        "report=false",  # the figures are of training, not of the end-of-run report.html
        f"paths.output_dir={out / name.replace('+', '_').replace('(', '_').replace(')', '')}",
        *VARIANTS[name],
    ]
    start = time.perf_counter()
    metrics = train(compose("train", overrides))
    return {
        "variant": name,
        "images_per_second": metrics["train_images_per_second"],
        "wall_seconds": round(time.perf_counter() - start, 1),
        "best_val_top1": metrics["best_val_top1"],
        "test_top1": metrics["test_top1"],
        "test_images": metrics["test_images"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--images", type=int, default=6016)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lightcls-gpu-bench")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = make_dataset(args.data, args.images, args.size + 32)
    gpu = torch.cuda.get_device_name()
    print(f"{gpu}; torch {torch.__version__}; {args.model} {args.size}px, batch {args.batch}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            code = (
                "import json, sys; from pathlib import Path; import argparse; "
                "sys.path.insert(0, 'benchmarks'); from gpu_recipe import run; "
                f"print('RESULT', json.dumps(run(Path({str(root)!r}), Path({tmp!r}), {name!r}, "
                f"argparse.Namespace(**json.loads({json.dumps(vars(args), default=str)!r})))))"
            )
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{name} failed:\n{done.stderr[-3000:]}", flush=True)
                continue
            rows.append(json.loads(line[len("RESULT ") :]))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["images_per_second"]
    for row in rows:
        speed = row["images_per_second"]
        print(f"{row['variant']:32s} {speed:9.1f} img/s  x{speed / base:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
