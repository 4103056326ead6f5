"""What the deployment extras give on a trained resnet18: int8 against fp32 ONNX (test top-1, file size, CPU
images/s side by side), calibration (test ECE before and after), test-time augmentation, and similar-image
search (leave-one-out recall@1 against the model's own top-1).

    python benchmarks/deploy_extras.py                     # trains resnet18 on the embedded digits first
    python benchmarks/deploy_extras.py --ckpt RUN_OR_CKPT --repeats 5

Every figure comes from the real commands (lightcls-export, -eval, -index) run here one after another;
the speeds are ONNX Runtime on this CPU, batch 32 of the test images, the two models timed alternately
(`--repeats` rounds, medians).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}


def lightcls(command: str, args: list[str], cwd: Path) -> str:
    """Run `lightcls-<command> args` (its console entry) and return what it printed."""
    entry = {"eval": "evaluate"}.get(command, command)
    code = f"from lightcls.cli.main import {entry}; {entry}()"
    done = subprocess.run(
        [sys.executable, "-c", code, *args, f"paths.outputs_root={cwd}"],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"lightcls-{command} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def train(out: Path, epochs: int) -> Path:
    """resnet18 on the embedded digits, `epochs` epochs, uncalibrated: its best checkpoint."""
    run = out / "resnet18"
    command = [sys.executable, str(REPO / "train.py"), "model=resnet18", f"trainer.max_epochs={epochs}"]
    command += ["report=false", f"hydra.run.dir={run}", f"paths.outputs_root={out}"]
    subprocess.run(command, check=True, cwd=out, env=ENV, capture_output=True)
    metrics = json.loads((run / "metrics.json").read_text())
    return run / metrics["best_ckpt"]


def evaluate(model: Path, out: Path, *extra: str) -> dict:
    """lightcls-eval of `model` on its test split: eval.json."""
    lightcls(
        "eval",
        [f"ckpt_path={model}", f"paths.output_dir={out}", "report=false", "gallery=0", *extra],
        out.parent,
    )
    return json.loads((out / "eval.json").read_text())


def speeds(models: dict[str, Path], images: Path, repeats: int) -> dict[str, float]:
    """Median CPU images/s of each ONNX model (batch 32 of `images`), timed alternately `repeats` times."""
    from lightcls.inference import OnnxPredictor, collect_inputs
    from lightcls.inference.quantize import image_batches, onnx_images_per_second

    files = collect_inputs(images)[0][:32]
    batch = next(image_batches(files, OnnxPredictor(next(iter(models.values()))).preprocess, 32)).numpy()
    runs: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, path in models.items():
            runs[name].append(onnx_images_per_second(path, batch, warmup=3, runs=20, budget_s=5.0))
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, help="a resnet18 checkpoint (default: train one)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="lightcls-deploy-"))
    ckpt = args.ckpt.resolve() if args.ckpt else train(out, args.epochs)
    copy = out / "model.ckpt"  # calibration writes into the checkpoint: a copy
    shutil.copy(ckpt, copy)

    plain = evaluate(copy, out / "eval")
    lightcls("export", [f"ckpt_path={copy}", f"save_dir={out / 'fp32'}"], out)
    int8_line = lightcls("export", [f"ckpt_path={copy}", f"save_dir={out / 'int8'}", "quantize=int8"], out)
    fp32, int8 = out / "fp32" / "model.onnx", out / "int8" / "model.onnx"
    on_test = {name: evaluate(path, out / f"eval_{name}") for name, path in (("fp32", fp32), ("int8", int8))}
    data = Path(plain["data"])
    fast = speeds({"fp32": fp32, "int8": int8}, data / "test_set", args.repeats)
    tta = evaluate(copy, out / "eval_tta", "tta=flip")["tta"]
    indexed = [
        f"ckpt_path={copy}",
        f"input={data / 'test_set'}",
        f"save_dir={out / 'index'}",
        "evaluate=true",
    ]
    lightcls("index", indexed, out)
    index = json.loads((out / "index" / "index.json").read_text())["evaluation"]
    calibrated = evaluate(copy, out / "eval_calibrated", "calibrate=true", "min_score=0.9")

    mb = {name: path.stat().st_size / 2**20 for name, path in (("fp32", fp32), ("int8", int8))}
    print(int8_line.strip())
    print(f"\nresnet18 on {data.name}: test split, {plain['num_images']} images")
    print("| model | test top-1 | file MB | images/s (batch 32, ONNX Runtime, CPU) |")
    print("| --- | ---: | ---: | ---: |")
    for name in ("fp32", "int8"):
        print(f"| {name} ONNX | {on_test[name]['top1']:.4f} | {mb[name]:.1f} | {fast[name]:.0f} |")
    print(
        f"int8/fp32: top-1 {100 * (on_test['int8']['top1'] - on_test['fp32']['top1']):+.2f} points, "
        f"size {mb['int8'] / mb['fp32']:.3f}x, speed {fast['int8'] / fast['fp32']:.2f}x "
        f"(medians of {args.repeats})"
    )
    chosen = calibrated["selective"]
    print(
        f"calibration: temperature {calibrated['temperature']:.3f}, "
        f"test ECE {calibrated['ece_uncalibrated']:.4f} "
        f"-> {calibrated['ece']:.4f}; min_score 0.9: coverage {chosen['coverage']:.4f}, "
        f"accuracy {chosen['accuracy']:.4f} (all: {calibrated['top1']:.4f})"
    )
    print(f"tta=flip: top-1 {tta['without']:.4f} -> {tta['with']:.4f} ({tta['gain']:+.4f})")
    print(
        f"search over the test split (leave-one-out): recall@1 {index['recall@1']:.4f}, recall@5 "
        f"{index['recall@5']:.4f}, mAP@5 {index['mAP@5']:.4f}; the model's own top-1 {plain['top1']:.4f}"
    )
    print(f"(files in {out}; np {np.__version__})")


if __name__ == "__main__":
    main()
