"""Accuracy and speed of lightcls's recipes against a hand-written loop, side by side in one run.

    python benchmarks/accuracy.py                          # 2 epochs x 3 repeats, then 10 epochs x 1
    python benchmarks/accuracy.py --short-repeats 5 --long-epochs 12 --long-repeats 2
    python benchmarks/accuracy.py --long-variants default folder_scratch   # only these at the long length

Data: a 5,000-image RGB split-folder set of mixed-size JPEGs built from scikit-learn's digits (colour, scale,
position, background vary; benchmarks/colour_digits.py): 4,000 train, 1,000 val from unseen handwriting.
Every variant is its own process, timed whole (start-up included), resnet18 at 32x32, batch 64, all cores:

- hand: torchvision ImageFolder + DataLoader (2 workers) + a plain loop, SGD lr 0.01 momentum 0.9,
  no augmentation, no schedule; it decodes the JPEGs every epoch, as such loops do;
- lightcls: `python train.py model=resnet18 data=folder data.root=... data.image_size=32
  data.batch_size=64 data.hflip=0` plus each variant's overrides (its decode cache deleted before every
  run); the experiment variants run their own recipe's epochs.

Prints, per variant and length: final val top-1 (median over repeats), training images/s (steady state,
the first 5 batches of an epoch excluded, both sides), whole-process wall time, and the time to reach the
hand loop's long-run val top-1 (the wall time of the run stopped at the first epoch that reaches it:
whole wall minus the epochs after it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SKIP = 5
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

#: lightcls variants: overrides added to the common command line
VARIANTS = {
    "default": [],
    "augment=light": ["augment=light"],
    "augment=standard": ["augment=standard"],
    "folder_scratch": ["experiment=folder_scratch"],  # its own 10 epochs
    "folder_fast": ["experiment=folder_fast"],  # its own 4 epochs
}


def hand_epoch(net: Any, loader: Any, optimizer: Any, loss_fn: Any) -> float:
    """One plain epoch (zero_grad, forward, backward, step per batch); images/s after SKIP batches."""
    net.train()
    times, sizes = [], []
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter())
        sizes.append(len(y))
    return sum(sizes[SKIP:]) / (times[-1] - times[SKIP - 1])


def hand_loop(root: Path, epochs: int, t0: float, out: Path, workers: int, seed: int = 0) -> None:
    """The hand-written baseline (run in its own process by main)."""
    import torch
    import torchvision
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision import transforms as T

    torch.manual_seed(seed)
    transform = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize(MEAN, STD)])
    train = datasets.ImageFolder(str(root / "training_set"), transform=transform)
    val = datasets.ImageFolder(str(root / "val_set"), transform=transform)
    train_loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=workers)
    val_loader = DataLoader(val, batch_size=64, num_workers=workers)
    net = torchvision.models.resnet18(num_classes=len(train.classes))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    rows, speeds = [], []
    for epoch in range(1, epochs + 1):
        speeds.append(hand_epoch(net, train_loader, optimizer, loss_fn))
        net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += int((net(x).argmax(1) == y).sum())
        rows.append({"epoch": epoch, "val_top1": correct / len(val), "elapsed": time.time() - t0})
    out.write_text(json.dumps({"rows": rows, "images_per_second": statistics.median(speeds)}))


def run_hand(root: Path, epochs: int, workers: int, scratch: Path, seed: int = 0) -> dict:
    """The hand loop in a fresh process: its per-epoch val top-1, images/s and whole wall time."""
    out = scratch / "hand.json"
    t0 = time.time()
    args = ["--hand", str(epochs), "--t0", repr(t0), "--out", str(out), "--data", str(root)]
    args += ["--seed", str(seed)]
    subprocess.run([sys.executable, __file__, *args, "--hand-workers", str(workers)], check=True)
    wall = time.time() - t0
    result = json.loads(out.read_text())
    return {"rows": result["rows"], "images_per_second": result["images_per_second"], "wall": wall}


#: lightcls's data options for the colour digits (a mirrored digit is not the same digit, as
#: conf/data/digits.yaml says)
FOLDER = ["data=folder", "data.image_size=32", "data.batch_size=64", "data.hflip=0"]


def run_lightcls(
    root: Path, epochs: int, extra: list[str], scratch: Path, data: list[str] = FOLDER, report: bool = False
) -> dict:
    """`python train.py model=resnet18 <data> ...` in a fresh process, its decode cache deleted first;
    without report.html unless `report` (the figures are of training)."""
    shutil.rmtree(root / ".lightcls_cache", ignore_errors=True)
    run_dir = scratch / f"run{time.monotonic_ns()}"
    args = [
        "model=resnet18",
        *data,
        f"data.root={root}",
        f"hydra.run.dir={run_dir}",
        f"report={str(report).lower()}",
        *extra,
    ]
    if not any(a.startswith("experiment=") for a in extra):  # a recipe runs its own epochs
        args += ["trainer=cpu", f"trainer.max_epochs={epochs}"]
    t0 = time.time()
    done = subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True)
    wall = time.time() - t0
    if done.returncode:
        raise SystemExit(f"lightcls {extra} failed:\n{done.stderr[-3000:]}")
    with (run_dir / "metrics.csv").open() as f:
        table = list(csv.DictReader(f))
    rows = [
        {"epoch": int(r["epoch"]), "val_top1": float(r["val_top1"]), "elapsed": float(r["elapsed_seconds"])}
        for r in table
    ]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "rows": rows,
        "images_per_second": metrics["train_images_per_second"],
        "wall": wall,
        "seconds": metrics["seconds"],
    }


def time_to(result: dict, target: float) -> float | None:
    """Whole-process seconds of the run stopped at its first epoch reaching `target` (None: never)."""
    rows = result["rows"]
    hit = next((r for r in rows if r["val_top1"] >= target - 1e-9), None)
    return None if hit is None else result["wall"] - (rows[-1]["elapsed"] - hit["elapsed"])


def measure(root: Path, epochs: int, repeats: int, variants: list[str], workers: int) -> dict:
    """Every variant `repeats` times, the order rotated each repeat."""
    names = ["hand", *variants]
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as scratch:
        for rep in range(repeats):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                if name == "hand":
                    result = run_hand(root, epochs, workers, Path(scratch))
                else:
                    result = run_lightcls(root, epochs, VARIANTS[name], Path(scratch))
                results[name].append(result)
                print(
                    f"  {epochs} epochs, {name}: val top-1 {result['rows'][-1]['val_top1']:.4f}, "
                    f"{result['images_per_second']:.0f} img/s, {result['wall']:.1f} s",
                    flush=True,
                )
    return results


def table(results: dict, epochs: int, target: float | None) -> None:
    """Medians per variant, with ratios to the hand loop."""
    hand_speed = statistics.median(r["images_per_second"] for r in results["hand"])
    print(f"\n{epochs} epochs (median of {len(results['hand'])}):")
    print(f"| variant | epochs | val top-1 | images/s | vs hand | wall s | to {target or 0:.4f} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, runs in results.items():
        top1 = statistics.median(r["rows"][-1]["val_top1"] for r in runs)
        speed = statistics.median(r["images_per_second"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        reach = [time_to(r, target) for r in runs] if target is not None else []
        reached = [t for t in reach if t is not None]
        to = f"{statistics.median(reached):.1f} s" if len(reached) == len(runs) and reached else "-"
        ran = runs[0]["rows"][-1]["epoch"]
        print(
            f"| {name} | {ran} | {top1:.4f} | {speed:.0f} | {speed / hand_speed:.2f}x | {wall:.1f} | {to} |"
        )
        per_run = "; ".join(
            f"{r['rows'][-1]['val_top1']:.4f} {r['images_per_second']:.0f}/s {r['wall']:.0f}s" for r in runs
        )
        print(f"|   runs: {per_run} | | | | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lightcls-colour-digits")
    parser.add_argument("--short-epochs", type=int, default=2)
    parser.add_argument("--short-repeats", type=int, default=3)
    parser.add_argument("--short-variants", nargs="*", default=["default", "augment=light"])
    parser.add_argument("--long-epochs", type=int, default=10)
    parser.add_argument("--long-repeats", type=int, default=1)
    parser.add_argument(
        "--long-variants",
        nargs="*",
        default=["default", "augment=light", "augment=standard", "folder_scratch", "folder_fast"],
    )
    parser.add_argument("--hand-workers", type=int, default=2)
    parser.add_argument("--hand", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand:
        hand_loop(args.data, args.hand, args.t0, args.out, args.hand_workers, args.seed)
        return
    from colour_digits import make_colour_digits

    root = make_colour_digits(args.data)
    print(f"data {root}: 4,000 train + 1,000 val JPEGs; resnet18 32x32 batch 64; {os.cpu_count()} CPUs")
    if args.short_repeats and args.short_variants is not None:
        short = measure(root, args.short_epochs, args.short_repeats, args.short_variants, args.hand_workers)
        table(short, args.short_epochs, None)
    if args.long_repeats and args.long_variants:
        long = measure(root, args.long_epochs, args.long_repeats, args.long_variants, args.hand_workers)
        target = statistics.median(r["rows"][-1]["val_top1"] for r in long["hand"])
        table(long, args.long_epochs, target)


if __name__ == "__main__":
    main()
