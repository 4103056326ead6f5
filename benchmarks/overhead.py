"""Where lightcls's time goes, side by side in one run: per step, per run, and the default recipe.

    python benchmarks/overhead.py                          # all three parts
    python benchmarks/overhead.py --parts steps --repeats 7
    python benchmarks/overhead.py --parts recipe --seeds 0 1 2

- steps: training images/s of (b) lightcls (the real train task in this process, `optimizer=sgd
  optimizer.lr=0.01`, no validation) against (c) the same steps on tensors already in memory, with the same
  fused SGD update (the limit), (a) a hand-written loop (ImageFolder + DataLoader, plain SGD), and (d) the
  limit's steps in a bare Lightning Trainer (Lightning's own floor), for lenet and resnet18 on 32x32 RGB
  PNGs (benchmarks/train_throughput.py's set); median of `--repeats`, the order rotated each repeat, the
  first 5 batches of each epoch left out. `b/c paired`: one more lightcls run each repeat with a step of
  (c) after each of its own (train_throughput.PairedLimit), the median over all repeats' steps of the
  limit's step time over lightcls's (the loader and Lightning's hooks included): the two alternate every
  few milliseconds, so a shared machine's slow spells move both, where they move whole runs 10-20% apart.
  `d/c paired`: the same for (d), Lightning's floor.
- run: the default `python train.py` (lenet on the embedded digits, 10 epochs, report.html) in the
  repository, `--runs` times after one that writes the data and its cache: the whole process's wall time
  against metrics.json's `seconds`, part by part; `unaccounted` is the wall time no part holds (before
  the process started, after the last write).
- recipe: `python train.py model=resnet18` (its default recipe: AdamW, cosine, the data set's augment) for
  2 epochs against benchmarks/accuracy.py's hand loop (ImageFolder + DataLoader(2 workers), SGD lr 0.01
  momentum 0.9, no augmentation), per seed, each its own process timed whole, on held-out-style digits:
  4,000 train + 1,000 val pictures from disjoint halves of scikit-learn's handwriting, as grayscale PNGs
  (`data=digits data.root=...`) and as mixed-size colour JPEGs (`data=folder`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PARTS = ("startup", "data", "model", "train", "test", "report", "teardown")


def steps(repeats: int, epochs: int, data: Path, models: list[str]) -> None:
    """lightcls vs the in-memory limit vs a hand loop vs Lightning's own floor, images/s per model."""
    import train_throughput as tt

    root = tt.make_dataset(data, 5000, 500, 32)
    print(
        f"\nsteps: {root}, 5,000 train images 32x32 RGB PNG, batch 64, {epochs} epochs a run, "
        f"{torch.get_num_threads()} threads, median of {repeats}"
    )
    print(
        "| model | (a) hand loop | (b) lightcls | (c) limit | (d) Lightning floor | b/a | b/c | d/c "
        "| b/c paired | d/c paired |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as out:
        for model in models:
            runs: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
            ratios: list[float] = []  # each paired step's limit over lightcls, all repeats
            floor_ratios: list[float] = []  # each paired step's limit over Lightning's floor
            tt.lightcls_run(root, Path(out) / f"{model}-warm", model, 32, 64, 0)  # the decode cache, once
            for rep in range(repeats):
                for key in "abcdpq"[rep % 6 :] + "abcdpq"[: rep % 6]:
                    if key == "a":
                        runs["a"].append(tt.baseline(root, model, 32, 64, 2, epochs))
                    elif key == "b":
                        run = Path(out) / f"{model}{rep}"
                        metrics = tt.lightcls_run(root, run, model, 32, 64, 0, epochs)
                        runs["b"].append(metrics["train_images_per_second"])
                    elif key == "c":
                        runs["c"].append(tt.limit(model, 32, 64, 5000, epochs))
                    elif key == "p":
                        run = Path(out) / f"{model}{rep}-paired"
                        pairs = tt.lightcls_run(root, run, model, 32, 64, 0, epochs, paired=True)["pairs"]
                        ratios += [c / b for b, c in pairs]
                    elif key == "q":
                        lightning_floor(model, 32, 64, 5000, epochs, paired=True)
                        floor_ratios += [c / d for d, c in tt.PairedLimit.pairs]
                    else:
                        runs["d"].append(lightning_floor(model, 32, 64, 5000, epochs))
            a, b, c, d = (statistics.median(runs[k]) for k in "abcd")
            print(
                f"| {model} | {a:.0f} | {b:.0f} | {c:.0f} | {d:.0f} | "
                f"{b / a:.2f} | {b / c:.2f} | {d / c:.2f} | "
                f"{statistics.median(ratios):.2f} | {statistics.median(floor_ratios):.2f} |"
            )
            every = "; ".join(f"{k}: " + " ".join(f"{v:.0f}" for v in runs[k]) for k in "abcd")
            print(f"|   runs: {every} | | | | | | | | | |")


def lightning_floor(
    model: str, size: int, batch: int, images: int, epochs: int, paired: bool = False
) -> float:
    """(d) The limit's steps inside a bare Lightning Trainer (a LightningModule that only computes the loss,
    no callbacks, logger, progress bar or checkpoints): what Lightning's loop itself costs a step; `paired`:
    a step of the limit after each of its own (train_throughput.PairedLimit, its `pairs`)."""
    import lightning as L
    import train_throughput as tt
    from torch import nn

    from lightcls.models import build_model

    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    sizes = [batch] * (images // batch) + ([images % batch] if images % batch else [])

    class Batches:
        def __iter__(self):  # noqa: ANN204
            return iter([(x[:n], y[:n]) for n in sizes])

        def __len__(self) -> int:
            return len(sizes)

    class Step(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.loss = build_model(model, 10, 3), nn.CrossEntropyLoss()
            self.times: list[float] = []

        def training_step(self, b: tuple[torch.Tensor, torch.Tensor], i: int) -> torch.Tensor:
            return self.loss(self.net(b[0]), b[1])

        def on_train_batch_end(self, *_: object) -> None:
            self.times.append(time.perf_counter())

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, fused=True)

    step = Step()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[tt.PairedLimit(model, size, batch)] if paired else [],
    )
    trainer.fit(step, train_dataloaders=Batches())
    per_epoch = len(sizes)
    done = seconds = 0.0
    for e in range(epochs):
        times = step.times[e * per_epoch : (e + 1) * per_epoch]
        done += sum(sizes[5:])
        seconds += times[-1] - times[4]
    return done / seconds


def run_parts(runs: int) -> None:
    """The default `python train.py`: whole-process wall time and metrics.json's parts."""
    walls, parts = [], {p: [] for p in PARTS}
    with tempfile.TemporaryDirectory() as out:
        for i in range(-1, runs):  # run -1 writes the digits and their decode cache if missing: not counted
            run_dir = Path(out) / f"run{i}"
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run_dir}"],
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            if done.returncode:
                raise SystemExit(f"python train.py failed:\n{done.stderr[-3000:]}")
            if i < 0:
                continue
            walls.append(time.perf_counter() - start)
            seconds = json.loads((run_dir / "metrics.json").read_text())["seconds"]
            for part in PARTS:
                parts[part].append(seconds.get(part, 0.0))
    sums = [sum(parts[p][i] for p in PARTS) for i in range(runs)]
    print(f"\nrun: the default `python train.py` (lenet, digits, 10 epochs, report.html), median of {runs}")
    print("| part | seconds |")
    print("| --- | ---: |")
    for part in PARTS:
        print(f"| {part} | {statistics.median(parts[part]):.2f} |")
    gaps = [w - s for w, s in zip(walls, sums, strict=True)]
    print(f"| sum of the parts | {statistics.median(sums):.2f} |")
    print(f"| whole process (wall) | {statistics.median(walls):.2f} |")
    print(f"| unaccounted | {statistics.median(gaps):.2f} (runs: {', '.join(f'{g:.2f}' for g in gaps)}) |")


def recipe(seeds: list[int], epochs: int, scratch_root: Path) -> None:
    """resnet18's default recipe vs the hand loop per seed, on the grayscale and the colour digits."""
    from accuracy import FOLDER, run_hand, run_lightcls
    from colour_digits import make_colour_digits

    sets = {
        "grayscale PNG": (
            make_colour_digits(scratch_root / "lightcls-gray-digits", gray=True),
            ["data=digits"],
        ),
        "colour JPEG": (make_colour_digits(scratch_root / "lightcls-colour-digits"), FOLDER),
    }
    print(f"\nrecipe: resnet18, {epochs} epochs, 4,000 train / 1,000 val held-out digits, seeds {seeds}")
    print("| data | run | val top-1 | images/s | vs hand | wall s | vs hand |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as scratch:
        for name, (root, data) in sets.items():
            results: dict[str, list[dict]] = {"hand": [], "lightcls": []}
            for seed in seeds:
                order = ("hand", "lightcls") if seed % 2 == 0 else ("lightcls", "hand")
                for who in order:
                    if who == "hand":
                        result = run_hand(root, epochs, 2, Path(scratch), seed)
                    else:
                        extra = [f"seed={seed}", "trainer=cpu", f"trainer.max_epochs={epochs}"]
                        result = run_lightcls(root, epochs, extra, Path(scratch), data, report=True)
                    results[who].append(result)
            hand_speed = statistics.median(r["images_per_second"] for r in results["hand"])
            hand_wall = statistics.median(r["wall"] for r in results["hand"])
            for who, runs in results.items():
                top1 = statistics.median(r["rows"][-1]["val_top1"] for r in runs)
                speed = statistics.median(r["images_per_second"] for r in runs)
                wall = statistics.median(r["wall"] for r in runs)
                print(
                    f"| {name} | {who} | {top1:.4f} | {speed:.0f} | {speed / hand_speed:.2f}x | {wall:.1f} | "
                    f"{wall / hand_wall:.2f}x |"
                )
                every = "; ".join(
                    f"{r['rows'][-1]['val_top1']:.4f} {r['images_per_second']:.0f}/s {r['wall']:.1f}s"
                    for r in runs
                )
                print(f"|   | runs: {every} | | | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", default=["steps", "run", "recipe"], choices=["steps", "run", "recipe"]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["lenet", "resnet18"], help="models of the steps part")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each steps run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipe-epochs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    if "steps" in args.parts:
        steps(args.repeats, args.epochs, args.data / "lightcls-bench-5000", args.models)
    if "run" in args.parts:
        run_parts(args.runs)
    if "recipe" in args.parts:
        recipe(args.seeds, args.recipe_epochs, args.data)


if __name__ == "__main__":
    main()
