"""The eval task: a checkpoint on a split of a data set -> eval.json, confusion-matrix PNG, predictions."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader

from lightcls.checkpoints import load_module
from lightcls.data.datamodule import BUILTIN
from lightcls.data.images import ImageDataset
from lightcls.data.layout import read_layout
from lightcls.data.transforms import eval_transform
from lightcls.errors import LightclsError
from lightcls.evaluation import classification_report, plot_confusion_matrix, write_report

log = logging.getLogger(__name__)
SPLITS = ("val", "test")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt_path` on `cfg.split` of the data set; write and return the report."""
    if cfg.split not in SPLITS:
        raise LightclsError(f"split={cfg.split}: unknown split; choose one of {', '.join(SPLITS)}")
    module = load_module(cfg.ckpt_path)
    classes = module.classes
    root = _data_root(cfg)
    layout = read_layout(root)
    if layout.classes != classes:
        raise LightclsError(
            f"data.root={layout.root}: its classes ({', '.join(layout.classes)}) differ from the "
            f"checkpoint's ({', '.join(classes)})"
        )
    if not layout.has(cfg.split):
        raise LightclsError(f"split={cfg.split}: {layout.root} has no {cfg.split} images")
    samples = layout.splits[cfg.split]
    preprocess = module.hparams["preprocess"]
    dataset = ImageDataset(samples, int(preprocess["channels"]), eval_transform(preprocess))
    workers = 0 if cfg.data.num_workers == "auto" else int(cfg.data.num_workers)  # eval reads each image once
    loader = DataLoader(dataset, batch_size=int(cfg.data.batch_size), num_workers=workers)
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    probs = torch.cat(trainer.predict(module, dataloaders=loader)).float().cpu()
    target = torch.tensor([label for _, label in samples])

    report = {
        "ckpt": str(Path(cfg.ckpt_path).resolve()),
        "model": module.hparams["model"]["name"],
        "data": str(layout.root),
        "split": cfg.split,
        "classes": classes,
        **classification_report(probs, target, classes),
    }
    out_dir = Path(cfg.paths.output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, out_dir, list(dict.fromkeys(["json", *cfg.formats])))
    plot_confusion_matrix(report["confusion_matrix"], classes, out_dir / "confusion_matrix.png")
    if cfg.save_predictions:
        _write_predictions(samples, probs, classes, layout.root, out_dir / "predictions.csv")
    print_report(report, out_dir)
    return report


def _data_root(cfg: DictConfig) -> Path:
    """`data.root`, else the data set the checkpoint's run trained on (from its metrics.json)."""
    if not OmegaConf.is_missing(cfg.data, "root") and cfg.data.get("root"):
        root = Path(str(cfg.data.root)).expanduser()
        builtin = cfg.data.get("builtin")
        if builtin in BUILTIN and not (root / "classes.txt").is_file():
            BUILTIN[builtin](root)
        return root
    metrics = Path(cfg.ckpt_path).expanduser().resolve().parent.parent / "metrics.json"
    if metrics.is_file():
        data = json.loads(metrics.read_text(encoding="utf-8")).get("data")
        if data:
            log.info("data.root not given: using %s, the data set of %s", data, metrics)
            return Path(data)
    raise LightclsError(
        f"data.root: not given, and {metrics} does not say what {cfg.ckpt_path} was trained on; "
        "pass data.root=/path/to/data_set"
    )


def _write_predictions(
    samples: list[tuple[Path, int]], probs: torch.Tensor, classes: list[str], root: Path, path: Path
) -> None:
    """One row per image: file, true and predicted class, score, correct: to find the mistakes."""
    scores, preds = probs.max(dim=1)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["file", "true_label", "true_class", "pred_label", "pred_class", "pred_score", "correct"]
        )
        for (file, label), pred, score in zip(samples, preds.tolist(), scores.tolist(), strict=True):
            rel = file.relative_to(root) if file.is_relative_to(root) else file
            writer.writerow(
                [
                    rel.as_posix(),
                    label,
                    classes[label],
                    pred,
                    classes[pred],
                    f"{score:.6f}",
                    int(pred == label),
                ]
            )


def print_report(report: dict[str, Any], out_dir: Path) -> None:
    """The per-class table and the averages, as mmpretrain's test tool prints them."""
    table = Table(
        title=f"lightcls eval: {report['model']} on {Path(report['data']).name}/{report['split']} "
        f"({report['num_images']} images)"
    )
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in report["per_class"]:
        table.add_row(
            row["class"], *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])
        )
    table.add_section()
    for average in ("macro", "weighted"):
        row = report[average]
        table.add_row(
            f"{average} avg", *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])
        )
    Console().print(table)
    top5 = "-" if report["top5"] is None else f"{report['top5']:.4f}"
    Console().print(f"top1 {report['top1']:.4f}  top5 {top5}  -> {out_dir}")
