"""Predict throughput (images/s) of a checkpoint in PyTorch vs its ONNX export in ONNX Runtime, side by side.

    python benchmarks/predict_throughput.py --ckpt outputs/train/runs/<time>/checkpoints/last.ckpt \
        [--images DIR] [--batch-size 32] [--repeats 5] [--threads N]

Both run on the same images in the same batches, in this one process: `end-to-end` counts decoding and
preprocessing too (what lightcls-predict does), `model only` times the forward pass on ready batches.
Without --images it uses the test (else val) split of the data set the checkpoint was trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from lightcls.data.layout import read_layout
from lightcls.inference import collect_inputs
from lightcls.inference.export import export_model
from lightcls.inference.predictor import CheckpointPredictor, OnnxPredictor, Predictor, _session_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--images", type=Path, help="image folder (default: the checkpoint's test split)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the images (best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for both runtimes")
    parser.add_argument("--out", type=Path, help="also write the figures to this json file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    files = _images(args)
    ckpt = CheckpointPredictor(args.ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, _ = export_model(ckpt.module.net, ckpt.meta, Path(tmp) / "model.onnx", "onnx")
        onnx = OnnxPredictor(onnx_path)
        if args.threads:
            import onnxruntime as ort

            options = _session_options()
            options.intra_op_num_threads = args.threads
            onnx.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        rows = {
            name: measure(p, files, args.batch_size, args.repeats)
            for name, p in (("ckpt", ckpt), ("onnx", onnx))
        }

    print(
        f"{len(files)} images, batch {args.batch_size}, model {ckpt.meta['model']} at "
        f"{ckpt.channels}x{ckpt.preprocess.image_size}, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    )
    print(f"{'runtime':<8} {'end-to-end img/s':>17} {'model only img/s':>17}")
    for name, row in rows.items():
        print(f"{name:<8} {row['end_to_end']:>17.0f} {row['model_only']:>17.0f}")
    if args.out:
        args.out.write_text(
            json.dumps({"images": len(files), "batch_size": args.batch_size, **rows}, indent=2)
        )


def measure(predictor: Predictor, files: list[Path], batch_size: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` images/s, end to end (decode + preprocess + forward) and forward only."""
    batches = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    ready = [torch.stack([predictor.transform(predictor.to_tensor(f)) for f in b]) for b in batches]
    predictor.logits(ready[0])  # warm-up
    end_to_end, model_only = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            predictor.probabilities([predictor.to_tensor(f) for f in batch])
        end_to_end.append(len(files) / (time.perf_counter() - start))
        start = time.perf_counter()
        for batch in ready:
            predictor.logits(batch)
        model_only.append(len(files) / (time.perf_counter() - start))
    return {"end_to_end": max(end_to_end), "model_only": max(model_only)}


def _images(args: argparse.Namespace) -> list[Path]:
    if args.images:
        return collect_inputs(args.images)[0]
    metrics = args.ckpt.resolve().parent.parent / "metrics.json"
    layout = read_layout(json.loads(metrics.read_text())["data"])
    return [file for file, _ in layout.splits.get("test") or layout.splits["val"]]


if __name__ == "__main__":
    main()
