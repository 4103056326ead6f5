"""Each family's smallest model on this machine: parameters, FLOPs and training images/s at 32x32 and
224x224, and val top-1 after the same short schedule on benchmarks/colour_digits.py's set.

    python benchmarks/zoo.py                                  # every family, 2,000 train / 500 val, 3 epochs
    python benchmarks/zoo.py --families resnet vit --repeats 3

Speed: one process, a model alone on the machine; AdamW steps on a batch of 16 random images in memory (no
data pipeline), images/s over the median of --steps steps after two warm-up steps. Accuracy: `python
train.py model=NAME data=folder data.root=... data.image_size=S data.hflip=0 trainer.max_epochs=3` with the
model's family defaults (optimizer, lr, weight decay) at S=32, or the smallest side the model takes
(alexnet 64, inception_v3 75); maxvit takes only multiples of 224, too slow to train here. Prints a
Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightcls.models import build_model  # noqa: E402
from lightcls.models.catalog import describe  # noqa: E402
from lightcls.models.zoo import FAMILIES, members, size_rule  # noqa: E402

BATCH = 16


def train_speed(name: str, size: int, steps: int) -> float:
    """Training images/s of `name` at `size` px: the median of `steps` AdamW steps after two warm-ups."""
    torch.manual_seed(0)
    net = build_model(name, 10, 3, image_size=size).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 3, size, size), torch.randint(0, 10, (BATCH,))
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return BATCH / statistics.median(times)


def accuracy(root: Path, name: str, size: int, epochs: int, run_dir: Path) -> float:
    """The last epoch's val top-1 of a `train.py` run with the family's defaults."""
    from colour_digits import train_on

    return train_on(root, run_dir, [f"model={name}", f"trainer.max_epochs={epochs}"], size)["final_val_top1"]


def fits(name: str, size: int) -> int | None:
    """The side closest above `size` that `name` takes (None: none within 2x, or only 224 and up when
    `size` is smaller: maxvit's small-image column stays empty)."""
    smallest, multiple = size_rule(name)
    side = max(size, smallest)
    if multiple:
        side = -(-side // multiple) * multiple
    too_big = side >= 224 > size or side > 2 * max(size, smallest)
    return None if too_big else side


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", nargs="*", default=[f.name for f in FAMILIES])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="accuracy runs per model (median shown)")
    parser.add_argument(
        "--no-speed", action="store_true", help="accuracy only (speed needs the machine alone)"
    )
    parser.add_argument("--no-accuracy", action="store_true", help="sizes and speed only")
    args = parser.parse_args()
    from colour_digits import make_colour_digits

    torch.set_num_threads(torch.get_num_threads())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = make_colour_digits(scratch / "digits", n_train=args.train, n_val=args.val)
        for family in args.families:
            name = members(family)[0]
            row = {"family": family, "model": name}
            for size in (32, 224):
                side = fits(name, size)
                info = describe(name, side) if side else {"params": None, "flops": None}
                row[size] = {
                    "side": side,
                    "params": info["params"],
                    "flops": info["flops"],
                    "images_per_s": train_speed(name, side, args.steps)
                    if side and not args.no_speed
                    else None,
                }
            side = row[32]["side"]
            if side and side < 224 and not args.no_accuracy:
                tops = [
                    accuracy(root, name, side, args.epochs, scratch / f"{name}-{i}")
                    for i in range(args.repeats)
                ]
                row["top1"], row["top1_all"] = statistics.median(tops), tops
            rows.append(row)
            print(json.dumps(row), flush=True)
    schedule = f"{args.train} train / {args.val} val colour digits, {args.epochs} epochs, batch 64"
    print(f"\n{schedule}, each family's default optimizer; small: 32 px or the model's smallest side:\n")
    print(
        "| family | model | params (M) | GFLOPs small | train img/s small | GFLOPs 224 px "
        "| train img/s 224 px | val top-1 (side) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        small, big = row[32], row[224]

        def fmt(value: float | None, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        params = small["params"] or big["params"]
        top1 = f"{row['top1']:.3f} ({small['side']} px)" if "top1" in row else "-"
        print(
            f"| {row['family']} | {row['model']} | {fmt(params and params / 1e6, '.1f')} "
            f"| {fmt(small['flops'] and small['flops'] / 1e9, '.3f')} | {fmt(small['images_per_s'], '.0f')} "
            f"| {fmt(big['flops'] and big['flops'] / 1e9, '.2f')} | {fmt(big['images_per_s'], '.1f')} "
            f"| {top1} |"
        )


if __name__ == "__main__":
    main()
