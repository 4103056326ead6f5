"""The index task: embed a folder's images with a checkpoint and save a similar-image search index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from lightcls.ckpt import model_file
from lightcls.errors import LightclsError
from lightcls.files import write_json
from lightcls.inference import CheckpointPredictor, check_some_read, collect_inputs
from lightcls.inference.embed import checkpoint_digest, embed_files
from lightcls.inference.similar import (
    META_FILE,
    build_index,
    folder_labels,
    leave_one_out,
    require_faiss,
)
from lightcls.workflows.checks import check_index

EVAL_FILE = "index_eval.json"


def index(cfg: DictConfig) -> dict[str, Any]:
    """Index `cfg.input`'s images under `cfg.ckpt_path`'s embeddings in `<save_dir>` (index.faiss, files.txt,
    labels.txt, index.json); with `evaluate`, its leave-one-out retrieval scores; returns index.json."""
    check_index(cfg)
    require_faiss()
    ckpt = model_file(Path(str(cfg.ckpt_path)).expanduser()).resolve()
    source = Path(str(cfg.input)).expanduser()
    files, skipped = collect_inputs(source)
    if cfg.evaluate and folder_labels(source, files) is None:
        raise LightclsError(
            f"input={source}: evaluate=true needs a labelled folder: images in class folders "
            "(<class>/*.png, two classes or more)"
        )
    predictor = CheckpointPredictor(ckpt, device=str(cfg.device))
    vectors, kept = embed_files(predictor, files, int(cfg.batch_size), skipped)
    check_some_read(cfg.input, files, len(kept), skipped)
    about = {
        "ckpt": str(ckpt),
        "weights_sha256": checkpoint_digest(ckpt),
        "model": predictor.meta["model"],
        "input": str(source.resolve()),
    }
    built = build_index(vectors, kept, folder_labels(source, kept), about, int(cfg.approximate_above))
    if cfg.evaluate:
        built.meta["evaluation"] = leave_one_out(built, vectors, int(cfg.k))
    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    built.save(out_dir)
    if cfg.evaluate:
        write_json(out_dir / EVAL_FILE, built.meta["evaluation"])
    _print(built.meta, skipped, out_dir)
    return {**built.meta, "index": str(out_dir), "skipped": skipped}


def _print(meta: dict[str, Any], skipped: list[dict[str, str]], out_dir: Path) -> None:
    """What was indexed, the evaluation's scores, what was skipped, and where the index is."""
    console = Console()
    console.print(
        f"{meta['count']} images, {meta['dim']}-d {meta['model']} embeddings, {meta['search']} search",
        soft_wrap=True,
    )
    scores = meta.get("evaluation")
    if scores:
        shown = ", ".join(f"{key} {value:.4f}" for key, value in scores.items() if isinstance(value, float))
        console.print(f"leave-one-out retrieval over {scores['queries']} images: {shown}", soft_wrap=True)
    for item in skipped:
        console.print(f"skipped {item['file']}: {item['reason']}", soft_wrap=True)
    console.print(f"-> {out_dir / META_FILE}", soft_wrap=True)
