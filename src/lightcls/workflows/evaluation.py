"""Evaluating a checkpoint on a split of its data set: eval.json, the confusion-matrix PNG, predictions,
the mistakes gallery (what `lightcls-eval`, the end of training and the report page write)."""

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

from lightcls.ckpt import best_of_sweep, data_provenance, read_checkpoint
from lightcls.data import ImageDataModule, SplitFolderDataModule
from lightcls.data.shards import Manifest, has_manifest
from lightcls.errors import LightclsError
from lightcls.evaluation import classification_metrics, plot_confusion_matrix, write_metrics
from lightcls.evaluation.annotate import annotate
from lightcls.evaluation.gallery import find_label_mistakes, find_mistakes, write_gallery
from lightcls.evaluation.metrics import AVERAGES, binarize, multilabel_metrics
from lightcls.evaluation.plots import plot_pr_curves
from lightcls.inference import load_predictor
from lightcls.training import ClassificationModule
from lightcls.training.callbacks import TestPredictions
from lightcls.training.quiet import quiet
from lightcls.workflows.checks import check_eval

log = logging.getLogger(__name__)
#: a training run's eval/: no page of its own (the run's report.html is it), no scores.csv (every image's
#: probability for every class: 50,000 x 1,000 is a 400 MB file; lightcls-eval writes it)
END_EVAL = ("report=false", "save_scores=false")


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt_path` on `cfg.split` of its data set; write and return the metrics.

    A `.ckpt`'s images go through the DataModule the checkpoint was trained with (its saved settings, the
    data check included) and `trainer.test`, as at the end of training; an exported `.onnx` or TorchScript
    model runs in its own runtime over the same DataModule. The metrics come from those predictions.
    """
    check_eval(cfg)
    ckpt = best_of_sweep(Path(str(cfg.ckpt_path)).expanduser())  # a sweep dir: its best run's
    exported = ckpt.suffix.lower() in (".onnx", ".pt")
    if exported:
        predictor = load_predictor(ckpt, device=str(cfg.accelerator), provider=cfg.provider)
        classes, model_name = predictor.classes, predictor.meta["model"]
        preprocess, saved = predictor.preprocess.to_dict(), predictor.meta.get("data")
        thresholds = predictor.thresholds
    else:
        module = ClassificationModule.from_checkpoint(ckpt)
        classes, model_name = module.classes, module.hparams["model"]["name"]
        preprocess, saved = module.preprocess.to_dict(), data_provenance(read_checkpoint(ckpt))
        thresholds = module.thresholds.tolist() if module.multilabel else None
    datamodule = eval_datamodule(cfg, saved, preprocess)
    if datamodule.classes != classes:
        raise LightclsError(
            f"data.root={datamodule.layout.root}: its classes ({', '.join(datamodule.classes)}) differ from "
            f"the checkpoint's ({', '.join(classes)})"
        )
    if not datamodule.layout.has(cfg.split):
        raise LightclsError(f"split={cfg.split}: {datamodule.layout.root} has no {cfg.split} images")
    datamodule.setup_split(cfg.split)
    with quiet(bool(cfg.get("verbose", False))):
        if exported:
            probs, target = _predict_exported(predictor, datamodule, cfg.split)
        else:
            probs, target = _predict_split(module, datamodule, cfg)
    metrics = write_evaluation(cfg, ckpt, model_name, datamodule, probs, target, thresholds=thresholds)
    print_metrics(metrics, Path(cfg.paths.output_dir).resolve())
    return metrics


def write_evaluation(
    cfg: DictConfig,
    ckpt: Path,
    model_name: str,
    datamodule: ImageDataModule,
    probs: torch.Tensor,
    target: torch.Tensor,
    samples: list[tuple[Path, Any]] | None = None,
    thresholds: list[float] | None = None,
) -> dict[str, Any]:
    """The metrics of the predictions of `samples` (default: all of `cfg.split`, in its order) and the files
    eval writes (eval.json, confusion matrix, gallery, predictions.csv, ...) in `cfg.paths.output_dir`; a
    multi-label model's labels are those at or above its `thresholds`."""
    samples = datamodule.layout.splits[cfg.split] if samples is None else samples
    classes = datamodule.classes
    multilabel = target.ndim == 2
    thresholds = thresholds or [0.5] * len(classes)
    metrics = {
        "ckpt": str(ckpt.resolve()),
        "model": model_name,
        "data": str(datamodule.layout.root),
        "split": cfg.split,
        "classes": classes,
        **(
            multilabel_metrics(probs, target, classes, thresholds)
            if multilabel
            else classification_metrics(probs, target, classes, list(cfg.topk), str(cfg.average))
        ),
    }
    out_dir = Path(cfg.paths.output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if multilabel:
        _write_multilabel_files(cfg, metrics, datamodule, probs, target, samples, thresholds)
        return metrics
    root = datamodule.layout.root
    if cfg.gallery:
        mistakes = find_mistakes(samples, probs, classes, root, right=bool(cfg.gallery_right))
        write_gallery(mistakes, root, out_dir / "gallery", int(cfg.gallery))
        metrics["confused_pairs"] = mistakes["confused_pairs"][:10]
    write_metrics(metrics, out_dir, list(dict.fromkeys(["json", *cfg.formats])))
    plot_confusion_matrix(metrics["confusion_matrix"], classes, out_dir / "confusion_matrix.png")
    if cfg.save_predictions:
        _write_predictions(samples, probs, classes, root, out_dir / "predictions.csv")
    if cfg.save_scores:
        _write_scores(samples, probs, classes, root, out_dir / "scores.csv")
    if cfg.show_dir:
        _show(samples, probs, classes, Path(str(cfg.show_dir)).expanduser())
    return metrics


def _write_multilabel_files(
    cfg: DictConfig,
    metrics: dict[str, Any],
    datamodule: ImageDataModule,
    probs: torch.Tensor,
    target: torch.Tensor,
    samples: list[tuple[Path, Any]],
    thresholds: list[float],
) -> None:
    """A multi-label evaluation's files beside eval.json: precision-recall curves, the worst images,
    predictions.csv (true and predicted labels) and scores.csv."""
    classes, root = datamodule.classes, datamodule.layout.root
    out_dir = Path(cfg.paths.output_dir).resolve()
    predicted = binarize(probs, thresholds)
    if cfg.gallery:
        mistakes = find_label_mistakes(samples, probs, predicted, classes, root)
        write_gallery(mistakes, root, out_dir / "gallery", int(cfg.gallery))
    write_metrics(metrics, out_dir, list(dict.fromkeys(["json", *cfg.formats])))
    plot_pr_curves(probs, target, classes, out_dir / "pr_curves.png")
    if cfg.save_predictions or cfg.save_scores:
        names = [_names(label, classes) for _, label in samples]
        if cfg.save_predictions:
            rows = [
                [
                    _rel(file, root),
                    truth,
                    _names(_indices(hits), classes),
                    _names(_indices(hits), classes, row),
                ]
                for (file, _), truth, hits, row in zip(
                    samples, names, predicted.tolist(), probs.tolist(), strict=True
                )
            ]
            _write_rows(
                out_dir / "predictions.csv", ["file", "true_labels", "pred_labels", "pred_scores"], rows
            )
        if cfg.save_scores:
            rows = [
                [_rel(file, root), truth, *(f"{p:.6f}" for p in row)]
                for (file, _), truth, row in zip(samples, names, probs.tolist(), strict=True)
            ]
            _write_rows(out_dir / "scores.csv", ["file", "true_labels", *classes], rows)


def _indices(hits: list[int]) -> list[int]:
    return [i for i, hit in enumerate(hits) if hit]


def _names(labels: Any, classes: list[str], scores: list[float] | None = None) -> str:
    """Label indices as space-separated class names (or, with `scores`, their scores)."""
    if scores is not None:
        return " ".join(f"{scores[i]:.4f}" for i in labels)
    return " ".join(classes[i] for i in labels)


def _rel(file: Path, root: Path) -> str:
    return (file.relative_to(root) if file.is_relative_to(root) else file).as_posix()


def _write_rows(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _predict_exported(
    predictor: Any, datamodule: ImageDataModule, split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and labels of `split` from an exported model, batch by batch of the split's loader."""
    probs, targets = [], []
    for images, labels in datamodule.loader(split):
        probs.append(predictor.probabilities(list(images)))
        targets.append(labels)
    return torch.cat(probs), torch.cat(targets)


def _write_scores(
    samples: list[tuple[Path, int]], probs: torch.Tensor, classes: list[str], root: Path, path: Path
) -> None:
    """Every image's probability for every class (file, true label, then one column per class)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "true_label", *classes])
        for (file, label), row in zip(samples, probs.tolist(), strict=True):
            rel = file.relative_to(root) if file.is_relative_to(root) else file
            writer.writerow([rel.as_posix(), label, *(f"{p:.6f}" for p in row)])


def _show(samples: list[tuple[Path, int]], probs: torch.Tensor, classes: list[str], folder: Path) -> None:
    """Each image annotated with its prediction, in `folder/right/` or `folder/wrong/` (+ the true class)."""
    scores, preds = probs.max(dim=1)
    for (file, label), pred, score in zip(samples, preds.tolist(), scores.tolist(), strict=True):
        wrong = pred != label
        result = {
            "pred_class": classes[pred] + (f" (true: {classes[label]})" if wrong else ""),
            "pred_score": score,
        }
        annotate(file, result, folder / ("wrong" if wrong else "right") / f"{file.parent.name}__{file.stem}")


def _predict_split(
    module: ClassificationModule, datamodule: ImageDataModule, cfg: DictConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and labels of `cfg.split`, from `trainer.test` on one device."""
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[predictions := TestPredictions()],
    )
    trainer.test(module, dataloaders=datamodule.loader(cfg.split), verbose=False)
    return predictions.tensors()


def eval_datamodule(
    cfg: DictConfig, saved: dict[str, Any] | None, preprocess: dict[str, Any]
) -> SplitFolderDataModule:
    """The checkpoint's own data set (its saved DataModule settings), with what `cfg.data` gives
    (`data=NAME`, `data.root=...`, batch size, workers) on top; images always get the checkpoint's
    preprocessing."""
    saved = saved or {}
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
    root = given.get("root") or saved.get("root")
    if root and has_manifest(root):  # predictions.csv and the gallery name files: use the packed folder
        source = Manifest.read(str(root)).source
        if given.get("root") or not Path(source).is_dir():
            raise LightclsError(
                f"data.root={root}: holds shards (lightcls-data pack); evaluation names image files, so "
                f"pass the split folder they were packed from: data.root={source}"
            )
        log.info("%s holds shards packed from %s: evaluating on that folder", root, source)
        saved = {**saved, "root": source}
    return SplitFolderDataModule.from_provenance({**saved, **given, **preprocess})


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


def print_metrics(metrics: dict[str, Any], out_dir: Path) -> None:
    """The per-class table and the averages, as mmpretrain's test tool prints them."""
    if metrics.get("task") == "multilabel":
        _print_multilabel(metrics, out_dir)
        return
    table = Table(
        title=f"lightcls eval: {metrics['model']} on {Path(metrics['data']).name}/{metrics['split']} "
        f"({metrics['num_images']} images)"
    )
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in metrics["per_class"]:
        table.add_row(
            row["class"], *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])
        )
    table.add_section()
    for mode in AVERAGES:
        row = metrics[mode]
        table.add_row(
            f"{mode} avg", *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])
        )
    Console().print(table)
    tops = [(k, v) for k, v in metrics.items() if k.startswith("top") and k[3:].isdigit()]
    shown = "  ".join(
        f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in sorted(tops, key=lambda t: int(t[0][3:]))
    )
    Console().print(f"{shown}  -> {out_dir}")


def _print_multilabel(metrics: dict[str, Any], out_dir: Path) -> None:
    table = Table(
        title=f"lightcls eval: {metrics['model']} on {Path(metrics['data']).name}/{metrics['split']} "
        f"({metrics['num_images']} images, multi-label)"
    )
    for column in ("class", "AP", "threshold", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in metrics["per_class"]:
        ap = "-" if row["ap"] is None else f"{row['ap']:.4f}"
        values = (f"{row[k]:.4f}" for k in ("precision", "recall", "f1"))
        table.add_row(row["class"], ap, f"{row['threshold']:.2f}", *values, str(row["support"]))
    table.add_section()
    for mode in ("micro", "macro"):
        row = metrics[mode]
        values = (f"{row[k]:.4f}" for k in ("precision", "recall", "f1"))
        table.add_row(f"{mode} avg", "", "", *values, str(row["support"]))
    Console().print(table)
    Console().print(
        f"mAP {metrics['map']:.4f}  F1 micro {metrics['f1_micro']:.4f}  macro {metrics['f1_macro']:.4f}  "
        f"-> {out_dir}"
    )
