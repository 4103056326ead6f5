"""The similar task: the images of an index nearest to a query image (or to each image of a folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from lightcls.ckpt import model_file
from lightcls.files import write_json
from lightcls.inference import CheckpointPredictor, check_some_read, collect_inputs
from lightcls.inference.embed import embed_files
from lightcls.inference.similar import load_index, query_checkpoint
from lightcls.workflows.checks import check_similar


def similar(cfg: DictConfig) -> dict[str, Any]:
    """The `cfg.k` images of index `cfg.index` nearest to each image of `cfg.query`, embedded with the
    index's checkpoint (or `cfg.ckpt_path`, which must hold the same weights); writes similar.json."""
    check_similar(cfg)
    folder = Path(str(cfg.index)).expanduser().resolve()
    built = load_index(folder)
    given = model_file(Path(str(cfg.ckpt_path)).expanduser()).resolve() if cfg.ckpt_path else None
    ckpt = query_checkpoint(built, folder, given)
    files, skipped = collect_inputs(Path(str(cfg.query)).expanduser())
    predictor = CheckpointPredictor(ckpt, device=str(cfg.device))
    vectors, kept = embed_files(predictor, files, int(cfg.batch_size), skipped)
    check_some_read(cfg.query, files, len(kept), skipped)
    found = built.neighbours(vectors, int(cfg.k))
    results = [{"query": str(file), "neighbours": rows} for file, rows in zip(kept, found, strict=True)]
    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    summary = {
        "index": str(folder),
        "ckpt": str(ckpt),
        "k": int(cfg.k),
        "results": results,
        "skipped": skipped,
    }
    write_json(out_dir / "similar.json", summary)
    _print(results, skipped, out_dir, int(cfg.print_rows), Path(str(built.meta.get("input", "/"))))
    return summary


def _print(
    results: list[dict[str, Any]], skipped: list[dict[str, str]], out_dir: Path, rows: int, root: Path
) -> None:
    """A table per query (the first `rows` queries): rank, file (from the indexed folder), score, and the
    label of a labelled index."""
    console = Console()
    for result in results[:rows]:
        table = Table(title=f"lightcls similar: {result['query']}")
        labelled = bool(result["neighbours"]) and "label" in result["neighbours"][0]
        for column in ("rank", "file", "score", *(["label"] * labelled)):
            justify = "right" if column in ("rank", "score") else "left"
            table.add_column(column, justify=justify, overflow="fold")
        for item in result["neighbours"]:
            label = [item["label"]] if labelled else []
            table.add_row(str(item["rank"]), _shown(item["file"], root), f"{item['score']:.4f}", *label)
        console.print(table)
    if len(results) > rows:
        console.print(f"... {len(results) - rows} more queries in similar.json")
    for item in skipped:
        console.print(f"skipped {item['file']}: {item['reason']}", soft_wrap=True)
    console.print(f"-> {out_dir / 'similar.json'}", soft_wrap=True)


def _shown(file: str, root: Path) -> str:
    """`file` relative to the indexed folder `root` when it lies in it."""
    path = Path(file)
    return str(path.relative_to(root)) if path.is_relative_to(root) else file
