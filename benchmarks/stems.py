"""The small-image stem against torchvision's ImageNet stem: accuracy per epoch and per second, one run each.

    python benchmarks/stems.py                           # resnet18, 32x32, 3 epochs, 2,000 train / 500 val
    python benchmarks/stems.py --epochs 5 --train 4000 --val 1000
    python benchmarks/stems.py --imagenet-epochs 15   # the ImageNet stem for about the small one's time

Data: benchmarks/colour_digits.py's photo-like RGB digits (mixed-size JPEGs, val from unseen handwriting).
Each run is `python train.py model=resnet18 data=folder data.root=... data.image_size=32 data.batch_size=64
data.hflip=0 model.stem=STEM trainer.max_epochs=N`, alone on the machine. Prints each epoch's val top-1 with
the seconds since the command started (metrics.csv's elapsed_seconds) and the training images/s.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run(root: Path, stem: str, epochs: int, scratch: Path) -> dict:
    """One training run with `model.stem=stem`: its per-epoch val top-1 and elapsed seconds, images/s."""
    from colour_digits import train_on

    run_dir = scratch / stem
    extra = ["model=resnet18", f"model.stem={stem}", f"trainer.max_epochs={epochs}"]
    metrics = train_on(root, run_dir, extra)
    with (run_dir / "metrics.csv").open() as f:
        rows = [(float(r["val_top1"]), float(r["elapsed_seconds"])) for r in csv.DictReader(f)]
    return {"rows": rows, "images_per_second": metrics["train_images_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--imagenet-epochs", type=int, default=None, help="default: --epochs")
    args = parser.parse_args()
    from colour_digits import make_colour_digits

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = make_colour_digits(scratch / "digits", n_train=args.train, n_val=args.val)
        epochs = {"imagenet": args.imagenet_epochs or args.epochs, "small": args.epochs}
        results = {stem: run(root, stem, epochs[stem], scratch) for stem in ("imagenet", "small")}
    print(f"\nresnet18, 32x32, batch 64, {args.train} train / {args.val} val images:\n")
    most = max(epochs.values())
    print("| stem | images/s | " + " | ".join(f"epoch {e + 1}: val top-1 (s)" for e in range(most)) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in range(most)) + " |")
    for stem, result in results.items():
        cells = [f"{top1:.3f} ({elapsed:.0f} s)" for top1, elapsed in result["rows"]]
        cells += [""] * (most - len(cells))
        speed = result["images_per_second"]  # None: too few batches to time
        print(f"| {stem} | {'-' if speed is None else f'{speed:.0f}'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
