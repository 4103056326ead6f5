"""The eval task: a checkpoint on a split of a data set -> eval.json, confusion-matrix PNG, predictions."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from lightcls.ckpt import data_provenance, read_checkpoint
from lightcls.data import SplitFolderDataModule
from lightcls.errors import LightclsError
from lightcls.evaluation import classification_report, plot_confusion_matrix, write_report
from lightcls.training import ClassificationModule
from lightcls.training.quiet import quiet

log = logging.getLogger(__name__)
SPLITS = ("val", "test")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt_path` on `cfg.split` of its data set; write and return the report.

    The images go through the DataModule the checkpoint was trained with (its saved settings, the data
    check included) and `trainer.test`, as at the end of training; the report comes from those predictions.
    """
    if cfg.split not in SPLITS:
        raise LightclsError(f"split={cfg.split}: unknown split; choose one of {', '.join(SPLITS)}")
    module = ClassificationModule.from_checkpoint(cfg.ckpt_path)
    datamodule = eval_datamodule(cfg, module)
    classes = module.classes
    if datamodule.classes != classes:
        raise LightclsError(
            f"data.root={datamodule.layout.root}: its classes ({', '.join(datamodule.classes)}) differ from "
            f"the checkpoint's ({', '.join(classes)})"
        )
    if not datamodule.layout.has(cfg.split):
        raise LightclsError(f"split={cfg.split}: {datamodule.layout.root} has no {cfg.split} images")
    datamodule.setup_split(cfg.split)
    with quiet(bool(cfg.get("verbose", False))):
        probs, target = _predict_split(module, datamodule, cfg)
    samples = datamodule.layout.splits[cfg.split]

    report = {
        "ckpt": str(Path(cfg.ckpt_path).resolve()),
        "model": module.hparams["model"]["name"],
        "data": str(datamodule.layout.root),
        "split": cfg.split,
        "classes": classes,
        **classification_report(probs, target, classes),
    }
    out_dir = Path(cfg.paths.output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, out_dir, list(dict.fromkeys(["json", *cfg.formats])))
    plot_confusion_matrix(report["confusion_matrix"], classes, out_dir / "confusion_matrix.png")
    if cfg.save_predictions:
        _write_predictions(samples, probs, classes, datamodule.layout.root, out_dir / "predictions.csv")
    print_report(report, out_dir)
    return report


def _predict_split(
    module: ClassificationModule, datamodule: SplitFolderDataModule, cfg: DictConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and labels of `cfg.split`, from `trainer.test` on one device."""
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    module.keep_test_outputs = True
    trainer.test(module, dataloaders=datamodule.loader(cfg.split), verbose=False)
    probs = torch.cat([p for p, _ in module.test_outputs])
    target = torch.cat([t for _, t in module.test_outputs])
    return probs, target


def eval_datamodule(cfg: DictConfig, module: ClassificationModule) -> SplitFolderDataModule:
    """The checkpoint's own data set (its saved DataModule settings), with what `cfg.data` gives
    (`data=NAME`, `data.root=...`, batch size, workers) on top; images always get the checkpoint's
    preprocessing."""
    saved = data_provenance(read_checkpoint(cfg.ckpt_path)) or {}
    data = cfg.get("data") or {}
    given = OmegaConf.to_container(data, resolve=True) if isinstance(data, DictConfig) else dict(data)
    given = {k: v for k, v in given.items() if not k.startswith("_") and k != "augment" and v is not None}
    if not saved.get("root") and not given.get("root"):
        raise LightclsError(
            f"data.root: not given, and {cfg.ckpt_path} does not record the data set it was trained on "
            "(a checkpoint from before lightcls 0.2); pass data.root=/path/to/data_set"
        )
    if given.get("root") or not saved:
        log.info("evaluating on data.root=%s", given.get("root"))
    return SplitFolderDataModule.from_provenance({**saved, **given, **module.preprocess.to_dict()})


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
