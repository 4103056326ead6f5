"""A 4-job sweep's wall time: Hydra's basic (sequential) launcher against the joblib launcher, side by side.

    python benchmarks/parallel_sweep.py                      # lenet on digits, 4 lrs, 3 epochs, 3 repeats
    python benchmarks/parallel_sweep.py --model resnet18 --epochs 2 --n-jobs 2 --repeats 3

Each repeat runs `python train.py -m optimizer.lr=a,b,c,d ...` once per launcher (alternating, so drift on
a shared machine hits both) and times the whole command. With joblib each job takes its share of the
cores (lightcls sets torch's threads to cores / n_jobs). Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sweep_seconds(launcher: list[str], args: list[str], out: Path) -> float:
    """Wall time of one `python train.py -m ...` sweep; fails loudly if the sweep does."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *launcher, *args, f"paths.outputs_root={out}"],
        capture_output=True,
        text=True,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sweep = [
        f"model={args.model}",
        "trainer=cpu",
        f"trainer.max_epochs={args.epochs}",
        "optimizer.lr=0.1,0.05,0.02,0.01",
        "logger=none",
        "report=false",  # the figures are of training, not of the end-of-run report.html
    ]
    launchers = {
        "basic (one job at a time)": [],
        f"joblib, n_jobs={args.n_jobs}": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"],
    }
    times: dict[str, list[float]] = {name: [] for name in launchers}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, launcher in launchers.items():
                seconds = sweep_seconds(launcher, sweep, Path(tmp) / f"{repeat}")
                times[name].append(seconds)
                print(f"repeat {repeat + 1}: {name}: {seconds:.1f} s", flush=True)
    setting = f"{args.model}, {args.epochs} epochs, {os.cpu_count()} cores"
    print(f"\n4-job sweep ({setting}), median of {args.repeats}:")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"  {name:28s} {median:6.1f} s")
    sequential, parallel = medians.values()
    print(f"  joblib / basic wall time: {parallel / sequential:.2f} ({sequential / parallel:.2f}x faster)")


if __name__ == "__main__":
    main()
