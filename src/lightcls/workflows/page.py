"""One self-contained page per run: report.html with results, curves, per-class table, confusion matrix,
mistakes with where the model looked, model size and settings (Jinja2 + matplotlib, images inline)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lightcls.ckpt import read_checkpoint
from lightcls.config import compose, quote
from lightcls.data.decode import load_image
from lightcls.errors import LightclsError
from lightcls.evaluation.gallery import safe_name
from lightcls.evaluation.plots import line_chart_svg
from lightcls.files import read_json
from lightcls.inference.explain import explain, save_picture
from lightcls.models.size import count
from lightcls.training import ClassificationModule
from lightcls.workflows.evaluation import END_EVAL, evaluate_checkpoint

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: the TensorBoard scalars drawn, one figure per group (train and val on the same axes)
CURVES = {
    "loss": ("train/loss_epoch", "val/loss"),
    "top-1": ("train/top1", "val/top1"),
    "mAP and F1": ("val/map", "train/f1", "val/f1_micro"),
    "lr": ("lr-",),
}
#: the same groups in metrics.csv, for a run without TensorBoard
CSV_CURVES = {
    "loss": ("train_loss", "val_loss"),
    "top-1": ("train_top1", "val_top1"),
    "mAP and F1": ("val_map", "train_f1", "val_f1_micro"),
    "lr": ("lr",),
}
#: an x-axis label, and per curve group its lines' points
Series = tuple[str, dict[str, dict[str, list[tuple[float, float]]]]]
#: the page shows the mistake grids of at most this many classes (those with the most mistakes)
GALLERY_CLASSES = 30


def build_report(
    run_dir: str | Path, cams: int = 8, method: str = "gradcam", eval_overrides: Sequence[str] = ()
) -> Path:
    """`<run_dir>/report.html` for a training run (its best checkpoint evaluated into `<run_dir>/eval/`
    first, with `eval_overrides`, where that is not done yet) or an eval run; returns its path."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    run = Path(run_dir).expanduser().resolve()
    if not run.is_dir():
        raise LightclsError(f"{run}: no such folder")
    if (run / "summary.json").is_file() and not (run / "metrics.json").is_file():
        run = _best_run(run)
    if (run / "metrics.json").is_file():
        kind, metrics = "training", _json(run / "metrics.json")
        eval_dir = _evaluated(run, metrics, eval_overrides)
    elif (run / "eval.json").is_file():
        kind, metrics, eval_dir = "eval", None, run
    else:
        raise LightclsError(f"{run}: not a run dir (no metrics.json or eval.json)")
    evaluation = _json(eval_dir / "eval.json") if eval_dir else None
    ckpt = evaluation["ckpt"] if evaluation else None
    module = ClassificationModule.from_checkpoint(ckpt) if ckpt and Path(ckpt).suffix == ".ckpt" else None
    page = {
        "title": _title(metrics, evaluation),
        "kind": kind,
        "run_dir": str(run),
        "data": (metrics or evaluation or {}).get("data"),
        "written": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "results": _results(metrics, evaluation),
        "model": _model(module),
        "curves": _curves(run) if kind == "training" else {},
        "settings": _settings(run, evaluation["ckpt"] if evaluation else None),
        **_evaluation(eval_dir, evaluation, cams, method, module),
    }
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    path = run / "report.html"
    path.write_text(env.get_template("report.html").render(**page), encoding="utf-8")
    return path


def _best_run(sweep: Path) -> Path:
    """A multirun sweep's or a search's best run dir (its summary.json lists them best first)."""
    rows = _json(sweep / "summary.json")
    done = [
        Path(r["run_dir"])
        for r in rows
        if r.get("run_dir") and (Path(r["run_dir"]) / "metrics.json").is_file()
    ]
    if not done:
        raise LightclsError(f"{sweep}: a sweep none of whose runs finished (no metrics.json)")
    log.info("%s: a sweep; its best run is %s", sweep, done[0])
    return done[0]


def _evaluated(run: Path, metrics: dict[str, Any], overrides: Sequence[str] = ()) -> Path | None:
    """The training run's eval dir: its best (else last) checkpoint on the test split (without one, the
    val split), once; None (said in a line) where it cannot be evaluated here."""
    eval_dir = run / "eval"
    ckpt = metrics.get("best_ckpt") or metrics.get("last_ckpt")
    if ckpt and _evaluates(eval_dir / "eval.json", ckpt, run):
        return eval_dir
    validated = metrics.get("final_val_top1", metrics.get("final_val_map")) is not None
    split = "test" if metrics.get("test_images") else "val" if validated else None
    if not ckpt or not split:
        return None

    given = [f"ckpt_path={quote(run / ckpt)}", f"paths.output_dir={quote(eval_dir)}", f"split={split}"]
    try:
        evaluate_checkpoint(compose("eval", [*given, *END_EVAL, *overrides]))
    except LightclsError as err:  # e.g. shards whose packed folder is not on this machine
        log.warning("no evaluation in the report: %s", err)
        return None
    return eval_dir


def _evaluates(done: Path, ckpt: str, run: Path) -> bool:
    """Whether `done` (an eval.json) is of the run's checkpoint `ckpt` as it is now (not from before a
    continued run); by the checkpoint's place in the run dir, which may have moved since."""
    path = run / ckpt
    if not (done.is_file() and path.is_file()):
        return False
    same = Path(_json(done).get("ckpt", "")).parts[-len(Path(ckpt).parts) :] == Path(ckpt).parts
    return same and done.stat().st_mtime >= path.stat().st_mtime


def _evaluation(
    eval_dir: Path | None,
    evaluation: dict[str, Any] | None,
    cams: int,
    method: str,
    module: ClassificationModule | None,
) -> dict[str, Any]:
    """The eval run's part of the page: per class, confusion matrix, confused pairs, gallery, CAMs."""
    if eval_dir is None or evaluation is None:
        return {}
    gallery = eval_dir / "gallery"
    mistakes = _json(gallery / "mistakes.json") if (gallery / "mistakes.json").is_file() else {"wrong": {}}
    by_count = sorted(mistakes["wrong"], key=lambda name: -len(mistakes["wrong"][name]))
    shown = sorted(by_count[:GALLERY_CLASSES], key=list(mistakes["wrong"]).index)  # in class order
    part: dict[str, Any] = {
        "split": evaluation["split"],
        "num_images": evaluation["num_images"],
        "per_class": evaluation["per_class"],
        "confusion": _data_uri(eval_dir / "confusion_matrix.png"),
        "pr_curves": _data_uri(eval_dir / "pr_curves.png"),
        "calibration": [_svg_file(eval_dir / f"{name}.svg") for name in ("reliability", "risk_coverage")],
        "pairs": evaluation.get("confused_pairs", [])[:10],
        "gallery": {name: _data_uri(gallery / f"wrong_{safe_name(name)}.png") for name in shown},
        "gallery_more": len(mistakes["wrong"]) - len(shown),
        "gallery_dir": str(gallery),
    }
    worst = sorted((i for items in mistakes["wrong"].values() for i in items), key=lambda i: -i["score"])[
        :cams
    ]
    if worst and module is not None:
        part.update(_cams(evaluation, worst, method, module))
    return part


def _cams(
    evaluation: dict[str, Any], worst: list[dict[str, Any]], method: str, module: ClassificationModule
) -> dict[str, Any]:
    """CAM pictures of the most confident mistakes, for the class the model wrongly chose (a multi-label
    model: for the first label it added, else the first it missed)."""
    try:
        import pytorch_grad_cam  # noqa: F401
    except ImportError:
        log.info("no Grad-CAM in the report: pip install 'lightcls[explain]'")
        return {}
    root = Path(evaluation["data"])
    images = [load_image(root / item["file"], module.preprocess.channels) for item in worst]
    try:
        if "missed" in worst[0]:  # multi-label: where the model looked for the first label it got wrong
            targets = [(item["spurious"] or item["missed"])[0] for item in worst]
            found = [
                explain(module, [image], method, target)
                for image, target in zip(images, targets, strict=True)
            ]
            layer, explanations = found[0][0], [one[1][0] for one in found]
        else:
            layer, explanations = explain(module, images, method)
    except LightclsError as err:  # a transformer: the report has everything else
        log.info("no Grad-CAM in the report: %s", err)
        return {}
    cams = []
    for item, explanation in zip(worst, explanations, strict=True):
        buffer = io.BytesIO()
        save_picture(explanation, buffer)
        caption = (
            f"{item['file']}: true {item['true_class']}, predicted {item['pred_class']} {item['score']:.2f}"
        )
        if "missed" in item:
            wrong = [f"missed {' '.join(item['missed'])}"] * bool(item["missed"])
            wrong += [f"spurious {' '.join(item['spurious'])}"] * bool(item["spurious"])
            caption = f"{item['file']}: true {item['true_class']}; {', '.join(wrong)}"
        cams.append({"image": _png_uri(buffer.getvalue()), "caption": caption})
    return {"cams": cams, "cam_layer": layer, "cam_method": method}


def _curves(run: Path) -> dict[str, str]:
    """Training curves, one SVG chart per group: from the run's TensorBoard event files (a point a step), or,
    where it logged none (logger=none), from its metrics.csv (a point an epoch)."""
    x_label, groups = _board_series(run / "tensorboard") or _csv_series(run / "metrics.csv")
    return {name: _svg_uri(line_chart_svg(lines, name, x_label)) for name, lines in groups.items() if lines}


def _board_series(board: Path) -> Series | None:
    """The CURVES groups' scalars from TensorBoard event files, by step; None where there are none."""
    folders = sorted({p.parent for p in board.rglob("events.out.tfevents.*")}) if board.is_dir() else []
    if not folders:
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    groups: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for events_dir in folders:
        accumulator = EventAccumulator(str(events_dir))
        chatty = logging.getLogger("tensorboard")  # an INFO line per event file read
        level, chatty.level = chatty.level, logging.WARNING
        try:
            accumulator.Reload()
        finally:
            chatty.setLevel(level)
        tags = accumulator.Tags()["scalars"]
        for name, prefixes in CURVES.items():
            chosen = [
                t for t in tags if any(t == p or (p.endswith("-") and t.startswith(p)) for p in prefixes)
            ]
            if chosen and name not in groups:
                groups[name] = {t: [(p.step, p.value) for p in accumulator.Scalars(t)] for t in chosen}
    return "step", groups


def _csv_series(path: Path) -> Series:
    """The same groups from the run's per-epoch records (metrics.csv), by epoch."""
    if not path.is_file():
        return "epoch", {}
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    groups: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, columns in CSV_CURVES.items():
        lines = {
            column: [(float(r["epoch"]), float(r[column])) for r in rows if r.get(column)]
            for column in columns
        }
        lines = {column: points for column, points in lines.items() if points}
        if lines:
            groups[name] = lines
    return "epoch", groups


def _model(module: ClassificationModule | None) -> dict[str, str]:
    """Parameters and FLOPs of the checkpoint's network at its input size."""
    if module is None:
        return {}
    pre = module.preprocess
    facts = count(module.net, pre.channels, pre.image_size)
    return {
        "model": module.hparams["model"]["name"],
        "parameters": f"{facts['params']:,}",
        "FLOPs per image": f"{facts['flops']:,}",
        "input": f"{pre.channels} x {pre.image_size} x {pre.image_size}",
        "classes": ", ".join(module.classes),
    }


def _results(metrics: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> dict[str, str]:
    multilabel = (metrics or evaluation or {}).get("task") == "multilabel"
    keys = ("best_val_map" if multilabel else "best_val_top1", "best_epoch", "epochs", "train_seconds")
    tests = ("test_map", "test_f1_micro", "test_f1_macro") if multilabel else ("test_top1", "test_top5")
    keys += () if evaluation else tests  # else the eval's rows say them
    rows = {k: metrics[k] for k in keys if metrics and metrics.get(k) is not None}
    if evaluation:
        shown = ("map", "f1_micro", "f1_macro", "precision", "recall") if multilabel else ("top1", "top5")
        shown += () if multilabel else ("precision", "recall", "f1")
        rows.update({f"{evaluation['split']} {k}": evaluation[k] for k in shown})
        rows.update({f"{evaluation['split']} {k}": evaluation.get(k) for k in ("ece", "ece_uncalibrated")})
        if evaluation.get("temperature", 1.0) != 1.0:
            rows["temperature"] = evaluation["temperature"]
        chosen, tta = evaluation.get("selective"), evaluation.get("tta")
        if chosen:
            rows[f"coverage at min_score {chosen['min_score']:g}"] = chosen["coverage"]
            rows[f"accuracy at min_score {chosen['min_score']:g}"] = chosen["accuracy"]
        if tta:
            rows[f"{tta['metric']} with tta={tta['mode']} (gain)"] = f"{tta['with']:.4f} ({tta['gain']:+.4f})"
    return {k: f"{v:.4f}" if isinstance(v, float) else str(v) for k, v in rows.items() if v is not None}


def _title(metrics: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> str:
    source = metrics or evaluation or {}
    return f"{source.get('model', '?')} on {Path(str(source.get('data', '?'))).name}"


def _settings(run: Path, ckpt: str | None) -> str:
    """The run's composed config; for a run started without Hydra, the checkpoint's hyperparameters."""
    config = run / ".hydra" / "config.yaml"
    if config.is_file():
        return config.read_text(encoding="utf-8")
    if ckpt and Path(ckpt).suffix == ".ckpt":
        return yaml.safe_dump(dict(read_checkpoint(ckpt)["hyper_parameters"]), sort_keys=False)
    return "(no .hydra/config.yaml in this run dir)"


def _data_uri(path: Path) -> str:
    return _png_uri(path.read_bytes()) if path.is_file() else ""


def _svg_file(path: Path) -> str:
    return _svg_uri(path.read_text(encoding="utf-8")) if path.is_file() else ""


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _json(path: Path) -> Any:
    return read_json(path, "a run's results: run it again or remove the folder")
