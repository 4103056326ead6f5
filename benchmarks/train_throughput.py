"""Training throughput, side by side in one process: hand-written loop vs lightcls vs the in-memory limit.

    python benchmarks/train_throughput.py                 # resnet18 and lenet, 32x32, batch 64, 3 repeats
    python benchmarks/train_throughput.py --models lenet --repeats 5

(a) baseline: torchvision ImageFolder + DataLoader + a plain PyTorch loop, decoding PNGs every epoch;
(b) lightcls: the real train task (Hydra config, Lightning Trainer, decode cache), its
    metrics.json `train_images_per_second`;
(c) limit: the same training step on tensors already in memory.
Same data, model, input size, batch size, threads; the first 5 batches of each epoch are excluded.
Prints images/s (median of the repeats) and the ratios b/a and b/c, and the decode cache's cost:
the first run's prepare time (decode) vs a second run's (cache reused).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from accuracy import hand_epoch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from lightcls.config import compose
from lightcls.models import build_model
from lightcls.tasks import train

SKIP = 5
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def make_dataset(root: Path, n_train: int, n_val: int, size: int) -> Path:
    """A CIFAR-sized RGB split-folder set from scikit-learn's digits (tinted, noised, upscaled PNGs)."""
    from sklearn.datasets import load_digits

    if (root / "classes.txt").is_file():
        return root
    digits = load_digits()
    rng = np.random.default_rng(0)
    names = [str(c) for c in range(10)]
    for split, count in (("training_set", n_train), ("val_set", n_val)):
        for i in range(count):
            k = int(rng.integers(len(digits.images)))
            label = int(digits.target[k])
            gray = Image.fromarray(np.uint8(digits.images[k] * 15)).resize((size, size), Image.BILINEAR)
            tint = rng.uniform(0.5, 1.0, size=3)
            rgb = np.asarray(gray, dtype=np.float32)[..., None] * tint + rng.normal(0, 8, (size, size, 3))
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.uint8(rgb.clip(0, 255))).save(folder / f"{i:05d}.png")
    (root / "classes.txt").write_text("\n".join(names) + "\n")
    return root


def baseline(root: Path, model: str, size: int, batch: int, workers: int, epochs: int = 1) -> float:
    """(a) ImageFolder + DataLoader + plain loop: images/s over `epochs` epochs."""
    transform = T.Compose([T.RandomCrop(size, padding=2), T.ToTensor(), T.Normalize(MEAN, STD)])
    data = datasets.ImageFolder(root / "training_set", transform=transform)
    loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=False)
    net = build_model(model, 10, 3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    speeds = [hand_epoch(net, loader, optimizer, loss_fn) for _ in range(epochs)]
    return len(speeds) / sum(1 / s for s in speeds)  # all images over all seconds: epochs are equal


class PairedLimit(L.Callback):
    """(b) and (c) step by step in one run: after each full training batch of a lightcls run past the first
    SKIP of an epoch, one step of the limit (c) on its own copy of the model and a batch in memory. The two
    alternate every few milliseconds, so a shared machine that slows down slows both alike, where it moves
    whole runs apart by 10-20%. `PairedLimit.pairs`: the last run's (lightcls step, limit step) seconds;
    lightcls's step runs from the end of the previous limit step (Lightning's hooks and the loader included).
    """

    pairs: list[tuple[float, float]] = []

    def __init__(self, model: str, size: int, batch: int) -> None:
        self.net = build_model(model, 10, 3).train()
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, fused=True
        )
        self.x, self.y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
        self.loss, self.batch, self._last = nn.CrossEntropyLoss(), batch, 0.0
        PairedLimit.pairs = []

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, i: int
    ) -> None:
        start = time.perf_counter()
        if i >= SKIP and len(batch[0]) == self.batch:
            self.optimizer.zero_grad()
            self.loss(self.net(self.x), self.y).backward()
            self.optimizer.step()
            end = time.perf_counter()
            PairedLimit.pairs.append((start - self._last, end - start))
        self._last = time.perf_counter()


def limit(model: str, size: int, batch: int, images: int, epochs: int = 1) -> float:
    """(c) The same epoch of steps (the last batch partial, as in (a) and (b)) on tensors in memory, with
    lightcls's own optimizer settings (torch's fused SGD update)."""
    net = build_model(model, 10, 3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    sizes = [batch] * (images // batch) + ([images % batch] if images % batch else [])
    net.train()
    done = seconds = 0.0
    for _ in range(epochs):
        times = []
        for n in sizes:
            optimizer.zero_grad()
            loss_fn(net(x[:n]), y[:n]).backward()
            optimizer.step()
            times.append(time.perf_counter())
        done += sum(sizes[SKIP:])
        seconds += times[-1] - times[SKIP - 1]
    return done / seconds


def lightcls_run(
    root: Path,
    out: Path,
    model: str,
    size: int,
    batch: int,
    workers: int,
    epochs: int = 1,
    paired: bool = False,
) -> dict:
    """(b) The real train task, `epochs` epochs, no validation or test in the timing; `paired`: a limit step
    after each of its steps (PairedLimit), their seconds in `pairs`."""
    overrides = [
        "data=folder",
        f"data.root={root}",
        f"data.image_size={size}",
        f"data.batch_size={batch}",
        f"data.num_workers={workers}",
        f"data.mean={MEAN}",
        f"data.std={STD}",
        "data.augment=[{_target_: lightcls.data.augment.RandomCrop, size: " + str(size) + ", padding: 2}]",
        f"model={model}",
        "optimizer=sgd",  # the same update as (a) and (c), whatever the model's own optimizer
        "optimizer.lr=0.01",
        "trainer=cpu",
        f"trainer.max_epochs={epochs}",
        "trainer.limit_val_batches=0",
        "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=none",
        "report=false",  # the figures are of training, not of the end-of-run report.html
        f"paths.output_dir={out}",
    ]
    if paired:
        overrides.append(
            "+callbacks.paired={_target_: train_throughput.PairedLimit, "
            f"model: {model}, size: {size}, batch: {batch}}}"
        )
    cfg = compose("train", overrides)
    start = time.perf_counter()
    metrics = train(cfg)
    metrics["wall_seconds"] = time.perf_counter() - start
    # the class Hydra instantiated: this module's own, also when this file runs as __main__
    metrics["pairs"] = list(importlib.import_module("train_throughput").PairedLimit.pairs) if paired else []
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "lenet"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--baseline-workers", type=int, default=2)
    parser.add_argument("--lightcls-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "lightcls-bench-5000")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = make_dataset(args.data, args.images, args.images // 10, args.size)
    for cache in root.glob(".lightcls_cache/*.npy"):
        cache.unlink()
    print(
        f"data {root}: {args.images} train images {args.size}x{args.size} RGB PNG; batch {args.batch}; "
        f"{args.threads} threads; baseline workers {args.baseline_workers}, lightcls workers "
        f"{args.lightcls_workers}; median of {args.repeats}"
    )
    print(f"{'model':10} {'(a) baseline':>13} {'(b) lightcls':>13} {'(c) limit':>11} {'b/a':>6} {'b/c':>6}")
    with tempfile.TemporaryDirectory() as out:
        for model in args.models:
            runs: dict[str, list[float]] = {"a": [], "b": [], "c": []}
            walls = []
            for rep in range(args.repeats):
                # rotate the order each repeat, so no variant always runs right after another
                for key in "abc"[rep % 3 :] + "abc"[: rep % 3]:
                    if key == "a":
                        runs["a"].append(baseline(root, model, args.size, args.batch, args.baseline_workers))
                    elif key == "b":
                        out_dir = Path(out) / f"{model}{rep}"
                        metrics = lightcls_run(
                            root, out_dir, model, args.size, args.batch, args.lightcls_workers
                        )
                        runs["b"].append(metrics["train_images_per_second"])
                        walls.append(metrics["wall_seconds"])
                    else:
                        runs["c"].append(limit(model, args.size, args.batch, args.images))
            a, b, c = (statistics.median(runs[k]) for k in "abc")
            print(f"{model:10} {a:13.1f} {b:13.1f} {c:11.1f} {b / a:6.2f} {b / c:6.2f}")
            print(
                f"{'':10} lightcls run wall time: first {walls[0]:.1f} s (decodes into the cache), "
                f"later {statistics.median(walls[1:] or walls):.1f} s (cache reused)"
            )
            print(
                f"{'':10} all runs: "
                + "; ".join(f"{k}=" + ",".join(f"{v:.0f}" for v in runs[k]) for k in "abc")
            )


if __name__ == "__main__":
    main()
