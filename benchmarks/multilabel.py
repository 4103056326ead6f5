"""Multi-label training: lightcls against a hand-written PyTorch loop, side by side in one run.

    python benchmarks/multilabel.py                       # 3 epochs x 3 repeats, resnet18 at 64x64
    python benchmarks/multilabel.py --epochs 5 --repeats 1 --model lenet
    python benchmarks/multilabel.py --variants default asl      # only these lightcls variants

Data: 64x64 RGB canvases holding one to three of scikit-learn's handwritten digits (labels: the digits
present), 3,000 train / 600 val / 600 test, each split drawn from its own handwriting
(lightcls.data.digits.write_multilabel_digits), annotated as CSV with space-separated class names.

- hand: a CSV Dataset (PIL decode + ToTensor + Normalize every epoch) + DataLoader (2 workers) + BCE with
  logits + SGD lr 0.01 momentum 0.9, no augmentation, no schedule; val mAP by torchmetrics, as such loops do;
- lightcls: `python train.py data=multilabel data.root=DIR data.train_list=train.csv data.val_list=val.csv
  data.test_list=test.csv model=resnet18 data.image_size=64 data.batch_size=64` plus each variant's
  overrides (its decode cache deleted before every run).

Both train resnet18 at batch 64 for the same epochs, every process alone on the machine. Prints per variant:
final val mAP (median over repeats, mAP over the classes present in val, as mmpretrain's), training images/s
(steady state: the first 5 batches of each epoch excluded, both sides) and whole-process wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

#: lightcls variants: overrides added to the common command line
VARIANTS = {
    "default": [],
    "sgd": ["optimizer=sgd", "optimizer.lr=0.01"],
    "asl": ["loss=asl"],
    "threshold=tune": ["threshold=tune"],
}


def hand_loop(root: Path, epochs: int, model: str, workers: int, out: Path) -> None:
    """The hand-written baseline (run in its own process by main)."""
    import torch
    import torchvision
    from accuracy import hand_epoch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from torchmetrics.functional.classification import multilabel_average_precision
    from torchvision import transforms as T

    torch.manual_seed(0)
    classes = (root / "classes.txt").read_text().split()
    transform = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])

    class CsvImages(Dataset):
        def __init__(self, listing: Path) -> None:
            with listing.open() as f:
                rows = list(csv.DictReader(f))
            self.files = [root / r["filename"] for r in rows]
            self.targets = torch.zeros(len(rows), len(classes))
            for i, r in enumerate(rows):
                for name in r["labels"].split():
                    self.targets[i, classes.index(name)] = 1

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int):
            with Image.open(self.files[i]) as img:
                return transform(img.convert("RGB")), self.targets[i]

    train, val = CsvImages(root / "train.csv"), CsvImages(root / "val.csv")
    train_loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=workers)
    val_loader = DataLoader(val, batch_size=64, num_workers=workers)
    if model == "resnet18":
        net = torchvision.models.resnet18(num_classes=len(classes))
    else:
        from lightcls.models import build_model

        net = build_model(model, len(classes), 3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    rows, speeds = [], []
    for epoch in range(1, epochs + 1):
        speeds.append(hand_epoch(net, train_loader, optimizer, loss_fn))
        net.eval()
        probs, targets = [], []
        with torch.no_grad():
            for x, y in val_loader:
                probs.append(net(x).sigmoid())
                targets.append(y.long())
        p, t = torch.cat(probs), torch.cat(targets)
        present = t.sum(0) > 0
        ap = multilabel_average_precision(p[:, present], t[:, present], int(present.sum()), average="macro")
        rows.append({"epoch": epoch, "val_map": float(ap)})
    out.write_text(json.dumps({"rows": rows, "images_per_second": statistics.median(speeds)}))


def run_hand(root: Path, epochs: int, model: str, workers: int, scratch: Path) -> dict:
    """The hand loop in a fresh process: its final val mAP, images/s and whole wall time."""
    out = scratch / "hand.json"
    t0 = time.time()
    args = ["--hand", "--epochs", str(epochs), "--model", model, "--out", str(out), "--data", str(root)]
    subprocess.run([sys.executable, __file__, *args, "--hand-workers", str(workers)], check=True)
    wall = time.time() - t0
    result = json.loads(out.read_text())
    return {
        "val_map": result["rows"][-1]["val_map"],
        "images_per_second": result["images_per_second"],
        "wall": wall,
    }


def run_lightcls(root: Path, epochs: int, model: str, extra: list[str], scratch: Path) -> dict:
    """`python train.py data=multilabel ...` in a fresh process, its decode cache deleted first."""
    shutil.rmtree(root / ".lightcls_cache", ignore_errors=True)
    run_dir = scratch / f"run{time.monotonic_ns()}"
    args = [
        f"model={model}",
        "data=multilabel",
        f"data.root={root}",
        "data.train_list=train.csv",
        "data.val_list=val.csv",
        "data.test_list=test.csv",
        "data.image_size=64",
        "data.batch_size=64",
        "trainer=cpu",
        f"trainer.max_epochs={epochs}",
        f"hydra.run.dir={run_dir}",
        "report=false",  # the figures are of training, not of the end-of-run report.html
        *extra,
    ]
    t0 = time.time()
    done = subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True)
    wall = time.time() - t0
    if done.returncode:
        raise SystemExit(f"lightcls {extra} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "val_map": metrics["final_val_map"],
        "test_map": metrics["test_map"],
        "test_f1_macro": metrics["test_f1_macro"],
        "images_per_second": metrics["train_images_per_second"],
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--data", type=Path, help="the data set (default: built in a temp dir)")
    parser.add_argument("--hand", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hand-workers", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand:
        hand_loop(args.data, args.epochs, args.model, args.hand_workers, args.out)
        return
    sys.path.insert(0, str(REPO / "src"))
    from lightcls.data.digits import write_multilabel_digits

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = args.data or write_multilabel_digits(scratch / "tags")
        results: dict[str, list[dict]] = {"hand": [], **{v: [] for v in args.variants}}
        for repeat in range(args.repeats):  # interleaved: a slow minute of the machine hits every side
            results["hand"].append(run_hand(root, args.epochs, args.model, 2, scratch))
            for variant in args.variants:
                results[variant].append(
                    run_lightcls(root, args.epochs, args.model, VARIANTS[variant], scratch)
                )
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    hand_speed = statistics.median(r["images_per_second"] for r in results["hand"])
    print(f"\n{args.model}, 64x64, batch 64, {args.epochs} epochs, median of {args.repeats}:\n")
    print("| run | val mAP | test mAP | test F1 macro | train images/s | vs hand | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        speed = statistics.median(r["images_per_second"] for r in runs)
        cells = [
            f"{statistics.median(r['val_map'] for r in runs):.4f}",
            f"{statistics.median(r['test_map'] for r in runs):.4f}" if name != "hand" else "-",
            f"{statistics.median(r['test_f1_macro'] for r in runs):.4f}" if name != "hand" else "-",
            f"{speed:,.0f}",
            f"{speed / hand_speed:.2f}",
            f"{statistics.median(r['wall'] for r in runs):.1f}",
        ]
        label = "hand loop (BCE + SGD)" if name == "hand" else f"lightcls {name}"
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
