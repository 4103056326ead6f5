"""Evaluating a checkpoint on a split of its data set: eval.json, the confusion-matrix PNG, predictions,
the mistakes gallery (what `lightcls-eval`, the end of training and the report page write)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from lightcls.ckpt import best_of_sweep, data_provenance, read_checkpoint
from lightcls.ckpt.io import update_weights
from lightcls.data import ImageDataModule, SplitFolderDataModule
from lightcls.data.shards import Manifest, has_manifest
from lightcls.errors import LightclsError
from lightcls.evaluation import classification_metrics, plot_confusion_matrix, write_metrics
from lightcls.evaluation.annotate import annotate
from lightcls.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    risk_coverage,
    selective,
    unscaled,
)
from lightcls.evaluation.gallery import find_label_mistakes, find_mistakes, write_gallery
from lightcls.evaluation.metrics import AVERAGES, binarize, mean_average_precision, multilabel_metrics
from lightcls.evaluation.plots import line_chart_svg, plot_pr_curves
from lightcls.inference import CheckpointPredictor, Predictor, load_predictor
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
    tta = str(cfg.get("tta") or "none")
    if exported and cfg.get("calibrate"):
        raise LightclsError(
            f"calibrate=true: {ckpt.name} is an exported model; calibrate its .ckpt, then export it again"
        )
    if exported:
        predictor = load_predictor(ckpt, device=str(cfg.accelerator), provider=cfg.provider)
        classes, model_name = predictor.classes, predictor.meta["model"]
        preprocess, saved = predictor.preprocess.to_dict(), predictor.meta.get("data")
        thresholds, temperature = predictor.thresholds, predictor.temperature
    else:
        module = ClassificationModule.from_checkpoint(ckpt)
        classes, model_name = module.classes, module.hparams["model"]["name"]
        preprocess, saved = module.preprocess.to_dict(), data_provenance(read_checkpoint(ckpt))
        thresholds = module.thresholds.tolist() if module.multilabel else None
        if cfg.get("calibrate") and module.multilabel:
            raise LightclsError(
                "calibrate=true: for single-label models; a multi-label model's thresholds are tuned in "
                "training (threshold=tune)"
            )
    datamodule = eval_datamodule(cfg, saved, preprocess)
    if datamodule.classes != classes:
        raise LightclsError(
            f"data.root={datamodule.layout.root}: its classes ({', '.join(datamodule.classes)}) differ from "
            f"the checkpoint's ({', '.join(classes)})"
        )
    if not datamodule.layout.has(cfg.split):
        raise LightclsError(f"split={cfg.split}: {datamodule.layout.root} has no {cfg.split} images")
    with quiet(bool(cfg.get("verbose", False))):
        if not exported and cfg.get("calibrate"):
            calibrate_on_val(module, datamodule, ckpt, {"accelerator": cfg.accelerator})
        if not exported:
            temperature = module.calibration
        datamodule.setup_split(cfg.split)
        plain = None
        if tta != "none":
            predictor = predictor if exported else CheckpointPredictor(ckpt, device=str(cfg.accelerator))
            probs, target, plain = _predict_with(predictor, datamodule, cfg.split, tta)
        elif exported:
            probs, target, _ = _predict_with(predictor, datamodule, cfg.split)
        else:
            probs, target = _predict_split(module, datamodule, cfg)
    extra = {"tta": tta_effect(tta, probs, plain, target)} if plain is not None else {}
    metrics = write_evaluation(
        cfg,
        ckpt,
        model_name,
        datamodule,
        probs,
        target,
        thresholds=thresholds,
        temperature=temperature,
        extra=extra,
    )
    print_metrics(metrics, Path(cfg.paths.output_dir).resolve())
    return metrics


def tta_effect(tta: str, probs: torch.Tensor, plain: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
    """What test-time augmentation changed: the headline score (top-1, or mAP) with and without it."""
    multilabel = target.ndim == 2
    score = mean_average_precision if multilabel else _top1
    with_tta, without = score(probs, target), score(plain, target)
    return {
        "mode": tta,
        "metric": "map" if multilabel else "top1",
        "with": with_tta,
        "without": without,
        "gain": with_tta - without,
    }


def _top1(probs: torch.Tensor, target: torch.Tensor) -> float:
    return float((probs.argmax(1) == target).float().mean())


def write_evaluation(
    cfg: DictConfig,
    ckpt: Path,
    model_name: str,
    datamodule: ImageDataModule,
    probs: torch.Tensor,
    target: torch.Tensor,
    samples: list[tuple[Path, Any]] | None = None,
    thresholds: list[float] | None = None,
    temperature: float = 1.0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metrics of the predictions of `samples` (default: all of `cfg.split`, in its order) and the files
    eval writes (eval.json, confusion matrix, gallery, predictions.csv, ...) in `cfg.paths.output_dir`; a
    multi-label model's labels are those at or above its `thresholds`; a single-label model's calibration
    (at its `temperature`, and before it); `extra`: more results for eval.json."""
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
    metrics.update(extra or {})
    out_dir = Path(cfg.paths.output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if multilabel:
        _write_multilabel_files(cfg, metrics, datamodule, probs, target, samples, thresholds)
        return metrics
    metrics.update(calibration_metrics(probs, target, temperature, cfg.get("min_score")))
    write_calibration_charts(metrics, out_dir)
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


def calibration_metrics(
    probs: torch.Tensor, target: torch.Tensor, temperature: float, min_score: float | None
) -> dict[str, Any]:
    """ECE (and, for a calibrated model, the ECE before its temperature), the reliability bins, the
    risk-coverage curve, and with `min_score` the accuracy and coverage of answering only above it."""
    metrics: dict[str, Any] = {"ece": expected_calibration_error(probs, target), "temperature": temperature}
    if temperature != 1.0:
        metrics["ece_uncalibrated"] = expected_calibration_error(unscaled(probs, temperature), target)
    metrics["reliability"] = reliability(probs, target)
    metrics["risk_coverage"] = [[round(c, 4), round(a, 4)] for c, a in risk_coverage(probs, target)]
    if min_score is not None:
        metrics["selective"] = selective(probs, target, float(min_score))
    return metrics


def write_calibration_charts(metrics: dict[str, Any], out_dir: Path) -> None:
    """reliability.svg (accuracy against confidence per bin, and the diagonal) and risk_coverage.svg."""
    bins = [row for row in metrics["reliability"] if row["count"]]
    diagram = line_chart_svg(
        {
            "accuracy per bin": [(row["confidence"], row["accuracy"]) for row in bins],
            "calibrated": [(0.0, 0.0), (1.0, 1.0)],
        },
        f"reliability (ECE {metrics['ece']:.4f})",
        "confidence",
    )
    (out_dir / "reliability.svg").write_text(diagram, encoding="utf-8")
    curve = line_chart_svg(
        {"accuracy": [tuple(point) for point in metrics["risk_coverage"]]},
        "accuracy of the most confident answers",
        "coverage (share of images answered)",
    )
    (out_dir / "risk_coverage.svg").write_text(curve, encoding="utf-8")


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


def _predict_with(
    predictor: Predictor, datamodule: ImageDataModule, split: str, tta: str = "none"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Probabilities and labels of `split` from a predictor (an exported model's runtime), batch by batch
    of the split's loader; with `tta`, averaged over its views, and the probabilities without it third."""
    probs, targets, plain = [], [], []
    for images, labels in datamodule.loader(split):
        resized = torch.stack([predictor.resize(image) for image in images])
        probs.append(predictor.scores(resized, tta))
        if tta != "none":
            plain.append(predictor.scores(resized))
        targets.append(labels)
    return torch.cat(probs), torch.cat(targets), torch.cat(plain) if plain else None


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


def val_outputs(
    module: ClassificationModule,
    datamodule: ImageDataModule,
    ckpt: str | Path,
    trainer: Mapping[str, Any],
    raw: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The val split's probabilities (`raw`: logits) and labels for the weights of `ckpt` (loaded into
    `module`; "" keeps its own), on the run's accelerator and precision."""
    if ckpt:
        module.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
    tester = L.Trainer(
        accelerator=trainer.get("accelerator", "auto"),
        devices=1,
        precision=trainer.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[predictions := TestPredictions(raw=raw)],
    )
    if "val" not in datamodule.datasets:
        datamodule.setup_split("val")
    tester.test(module, dataloaders=datamodule.loader("val"), verbose=False)
    return predictions.tensors()


def calibrate_on_val(
    module: ClassificationModule, datamodule: ImageDataModule, ckpt: str | Path, trainer: Mapping[str, Any]
) -> float:
    """The temperature that calibrates `ckpt`'s softmax on the val split: set in `module` and written into
    `ckpt`, so eval, predict, export and serve apply it."""
    if not datamodule.layout.has("val"):
        raise LightclsError(
            f"calibrate=true: {datamodule.layout.root} has no val split to fit the temperature on"
        )
    logits, target = val_outputs(module, datamodule, ckpt, trainer, raw=True)
    temperature = fit_temperature(logits, target)
    module.temperature.fill_(temperature)
    if ckpt:
        update_weights(Path(ckpt), {"temperature": module.temperature})
    log.info(
        "calibrate=true: temperature %.3f fitted on %d val images (NLL %.4f -> %.4f, ECE %.4f -> %.4f), "
        "saved in %s",
        temperature,
        len(target),
        nll(logits, target),
        nll(logits, target, temperature),
        expected_calibration_error(logits.softmax(1), target),
        expected_calibration_error((logits / temperature).softmax(1), target),
        Path(ckpt).name if ckpt else "the model",
    )
    return temperature


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
    kind = _data_class(data) if given.get("root") else SplitFolderDataModule
    return kind.from_provenance({**saved, **given, **preprocess})


def _data_class(data: Any) -> type[SplitFolderDataModule]:
    """The DataModule `data=NAME` names when it reads a split folder of its own making (data=cifar10,
    data=hf: their `root` is where they read from); the split folder's otherwise."""
    target = data.get("_target_") if isinstance(data, Mapping | DictConfig) else None
    found = get_class(str(target)) if target else None
    ours = isinstance(found, type) and issubclass(found, SplitFolderDataModule)
    return found if ours else SplitFolderDataModule


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
    Console().print(f"{shown}  {_trust(metrics)} -> {out_dir}", soft_wrap=True)


def _trust(metrics: dict[str, Any]) -> str:
    """ECE (before and after calibration), the minimum score's coverage, the test-time augmentation's gain."""
    parts = [f"ECE {metrics['ece']:.4f}"]
    if "ece_uncalibrated" in metrics:
        parts[0] += f" (T={metrics['temperature']:.3g}; {metrics['ece_uncalibrated']:.4f} without)"
    chosen = metrics.get("selective")
    if chosen:
        accuracy = "-" if chosen["accuracy"] is None else f"{chosen['accuracy']:.4f}"
        parts.append(
            f"min_score {chosen['min_score']:g}: coverage {chosen['coverage']:.4f}, accuracy {accuracy}"
        )
    tta = metrics.get("tta")
    if tta:
        parts.append(f"tta={tta['mode']}: {tta['metric']} {tta['with']:.4f} ({tta['gain']:+.4f})")
    return "  ".join(parts)


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
