"""A training run: compose data, model, trainer from the config, fit, test, write metrics.json (and the
report page). The train task runs one; a search runs one per trial."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from rich.console import Console
from rich.table import Table

from lightcls.ckpt import best_of_sweep, check_resume, read_checkpoint
from lightcls.ckpt.io import AtomicCheckpointIO, remove_partial_saves, update_weights
from lightcls.config import clock, compose, config_dir, quote
from lightcls.config.rundir import check_run_dir, requeued
from lightcls.data import ImageDataModule, StreamingDataModule
from lightcls.errors import Interrupted, one_line
from lightcls.evaluation import plot_confusion_matrix
from lightcls.evaluation.metrics import macro_f1, tune_thresholds
from lightcls.files import write_json
from lightcls.models import list_models, load_pretrained
from lightcls.models.registry import resolve_stem
from lightcls.models.zoo import family_of
from lightcls.training import ClassificationModule
from lightcls.training.callbacks import (
    BestValPredictions,
    CheckpointOnInterrupt,
    FitResults,
    KeptPredictions,
    LoaderPosition,
    ProgressBar,
    TestPredictions,
    TrainThroughput,
)
from lightcls.training.distill import check_distill
from lightcls.training.quiet import quiet
from lightcls.workflows.build import build_datamodule, mix_alphas, plain
from lightcls.workflows.checks import check_train_values
from lightcls.workflows.evaluation import END_EVAL, calibrate_on_val, val_outputs, write_evaluation
from lightcls.workflows.page import build_report
from lightcls.workflows.trackers import build_loggers, finish_trackers, flat, start_trackers, tracked

log = logging.getLogger(__name__)


def run_training(
    cfg: DictConfig, callbacks: Sequence[Callback] = (), group: Path | None = None
) -> dict[str, Any]:
    """Train a classifier as `cfg` says; return the metrics it writes to `<run dir>/metrics.json`.

    `callbacks` join those of the config (a search's pruning callback, for one); `group`: the dir of the
    search this run is a trial of (its runs share one MLflow store and W&B group; a multirun's by default).
    """
    with quiet(bool(cfg.get("verbose", False))), tracked():
        return _train(cfg, list(callbacks), group)


def _train(cfg: DictConfig, extra: list[Callback], group: Path | None) -> dict[str, Any]:
    """Build -> fit -> test -> write."""
    laps = Laps(time.time() - clock.run_started())
    check_train_values(cfg)
    run_dir = Path(cfg.paths.output_dir).resolve()
    resume = resume_from(cfg, run_dir)
    check_run_dir(run_dir, resume, bool(cfg.get("overwrite")))
    remove_partial_saves(run_dir / "checkpoints")
    datamodule = _prepared_data(cfg, run_dir)
    laps.lap("data")
    module = _build_module(cfg, datamodule, resume)
    trainer, checkpoint = _build_trainer(cfg, datamodule, extra, group)
    if cfg.get("lr_find") and not resume:
        find_lr(trainer, module, datamodule)
    laps.lap("model")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    except (SystemExit, SIGTERMException) as stop:  # Lightning's way out after Ctrl-C or SIGTERM
        _interrupted(stop, trainer.callbacks)
    laps.lap("train")
    fit = {k: _float(v) for k, v in trainer.callback_metrics.items()}  # read before test() resets them

    best = checkpoint.best_model_path if checkpoint is not None else ""
    if trainer.world_size > 1:
        _release_process_group()
    if trainer.global_rank != 0:  # another rank of a DDP run: rank 0 tests and writes the results
        return {}
    if module.multilabel and cfg.get("threshold") == "tune":
        tuned = best or (_last(checkpoint) if checkpoint is not None else "")
        tune_thresholds_on_val(cfg, module, datamodule, tuned)
    elif module.multilabel:
        module.thresholds.fill_(float(cfg.get("threshold", 0.5)))
    if cfg.get("calibrate"):
        _calibrate(module, datamodule, best or (_last(checkpoint) if checkpoint is not None else ""), cfg)
    test, predictions = _test(cfg, trainer, module, datamodule, checkpoint, best)
    laps.lap("test")

    metrics = _metrics(cfg, fit, test, checkpoint, best, module, datamodule, run_dir, laps.seconds)
    write_json(run_dir / "metrics.json", metrics)  # what the report page shows
    laps.lap("teardown")
    page = write_run_report(cfg, run_dir, metrics, predictions, datamodule) if cfg.get("report") else None
    laps.lap("report")
    _board_confusion(trainer.loggers, module, trainer.global_step)
    _log_hparams(trainer.loggers, cfg, metrics)
    metrics["seconds"] = laps.rounded()
    shown = {k: v for k, v in metrics["seconds"].items() if k != "teardown"}  # not over yet: metrics.json
    print_summary({**metrics, "seconds": shown}, run_dir)
    if page is not None:
        Console().print(f"-> {page}", soft_wrap=True)
    laps.lap("teardown")
    metrics["seconds"] = laps.rounded()
    write_json(run_dir / "metrics.json", metrics)
    finish_trackers(trainer.loggers, run_dir, metrics)  # metrics.json as written: an artifact
    return metrics


class Laps:
    """A run's wall time in consecutive parts (metrics.json `seconds`): from the command's start to the task
    (`startup`: the interpreter, imports, Hydra, the config check; 0 for a run started from Python or a
    multirun's later job), then each part up to its `lap`."""

    PARTS = ("startup", "data", "model", "train", "test", "report", "teardown")

    def __init__(self, startup: float) -> None:
        self.seconds = {"startup": startup}
        self._last = time.perf_counter()

    def lap(self, part: str) -> None:
        """The time since the last lap goes to `part` (added, when it already has some)."""
        now = time.perf_counter()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - self._last
        self._last = now

    def rounded(self) -> dict[str, float]:
        """Every part so far, in the order of a run, to 10 ms."""
        return {k: round(self.seconds[k], 2) for k in self.PARTS if k in self.seconds}


def settings_line(
    cfg: DictConfig, given: Sequence[str] = (), choices: Mapping[str, Any] | None = None
) -> str:
    """The run's effective optimizer, lr, weight decay, schedule and batch size, each followed by where it
    came from when not from the command line (`given`: its overrides; `choices`: Hydra's group choices),
    e.g. `optimizer adamw, lr 0.001, wd 0.05 (model=resnet18's default); schedule cosine over 10 epochs
    (the default); batch 32 (data=digits)`."""
    known = choices is not None  # without Hydra's choices (a run started from Python): values only
    choices = dict(choices or {})
    keys = {o.lstrip("+~").split("=", 1)[0] for o in given}
    model, recipe = cfg.model.name, choices.get("experiment")
    picked = choices.get("optimizer") or str(cfg.optimizer.get("_target_", "?")).rsplit(".", 1)[-1].lower()

    def origin(key: str, default: str | None) -> str | None:
        if key in keys or not known:
            return None
        return f"experiment={recipe}" if recipe else default

    family = family_of(model).name if model in list_models() else "its"
    optimizer = origin(
        "optimizer",
        f"model={model}: the {family} family's default"
        if picked != _default_choice("optimizer")
        else "the default",
    )
    own = f"optimizer={picked}'s default" if "optimizer" in keys else optimizer
    special = choices.get("model_optimizer")  # conf/model_optimizer/<model>_<optimizer>.yaml, where it exists
    has_own = special is not None and (config_dir() / "model_optimizer" / f"{special}.yaml").is_file()
    lr_from = f"model={model}'s {picked} lr" if has_own else own
    target = str(OmegaConf.select(cfg, "scheduler.schedule._target_", default="") or "")
    schedule = choices.get("scheduler") or (target.rsplit(".", 1)[-1] if target else "none")
    epochs = cfg.trainer.get("max_epochs")
    warmup = (cfg.scheduler or {}).get("warmup_epochs") or 0
    fields = [
        (f"optimizer {picked}", optimizer),
        (
            f"lr {cfg.optimizer.get('lr'):g}",
            origin("optimizer.lr", lr_from),
        ),
        (f"wd {cfg.optimizer.get('weight_decay', 0):g}", origin("optimizer.weight_decay", own)),
        (
            f"schedule {schedule} over {epochs} epoch{'' if epochs == 1 else 's'}"
            + (f", warmup {warmup:g}" if warmup else ""),
            origin("scheduler", "the default"),
        ),
        (f"batch {cfg.data.batch_size}", origin("data.batch_size", f"data={choices.get('data', '?')}")),
    ]
    parts, pending = [], []
    for i, (text, source) in enumerate(fields):
        pending.append(text)
        if i + 1 == len(fields) or fields[i + 1][1] != source or i == 2:  # the optimizer's part ends at wd
            parts.append(", ".join(pending) + (f" ({source})" if source else ""))
            pending = []
    return "; ".join(parts)


def _default_choice(group: str) -> str | None:
    """The option the train config's defaults list picks for `group`."""
    defaults = yaml.safe_load((config_dir() / "train.yaml").read_text(encoding="utf-8"))["defaults"]
    return next((d[group] for d in defaults if isinstance(d, dict) and group in d), None)


def _run_settings() -> tuple[list[str], dict[str, Any] | None]:
    """The command line's overrides and Hydra's group choices; a run started from Python has neither, and
    its line names no sources."""
    if not HydraConfig.initialized():
        return [], None
    hydra_cfg = HydraConfig.get()
    return list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices)


def _prepared_data(cfg: DictConfig, run_dir: Path) -> ImageDataModule:
    """The run's DataModule, its data checked and cached; the run is seeded after that, so a run that
    builds the cache repeats exactly."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    L.seed_everything(cfg.seed, workers=True)
    sizes = "/".join(str(len(datamodule.layout.splits.get(s, []))) for s in ("train", "val", "test"))
    log.info(
        "training %s on %s (%s): %d classes, %s train/val/test images; run dir %s",
        cfg.model.name,
        datamodule.name,
        datamodule.location,
        len(datamodule.classes),
        sizes,
        run_dir,
    )
    partial = len(datamodule.layout.splits["train"]) % datamodule.batch_size
    log.info(settings_line(cfg, *_run_settings()))
    if cfg.model.get("compile") and not cfg.data.get("drop_last") and partial:
        log.warning(
            "model.compile=true with a partial last batch: compile builds the model again every epoch "
            "(resnet18 on digits, H100: 112 against 1,460 images/s); add data.drop_last=true"
        )
    return datamodule


def _build_module(cfg: DictConfig, datamodule: ImageDataModule, resume: str | None) -> ClassificationModule:
    """The LightningModule of the config and the data (a resumed checkpoint checked against both)."""
    if resume:
        check_resume(resume, cfg.model.name, datamodule.classes, datamodule.preprocess.channels)
    module = ClassificationModule(
        model=_model_as_built(cfg, datamodule),
        classes=datamodule.classes,
        preprocess=datamodule.preprocess.to_dict(),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.scheduler),
        label_smoothing=cfg.get("label_smoothing", 0.0),
        mix=mix_alphas(cfg),
        class_weights=datamodule.class_weights() if datamodule.balance == "loss" else None,
        task=datamodule.task,
        loss=plain(cfg.get("loss")) or {},
        distill=_teacher(cfg),
    )
    params = sum(p.numel() for p in module.net.parameters())
    trainable = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
    log.info("%s: %s parameters (%s trainable)", cfg.model.name, f"{params:,}", f"{trainable:,}")
    if cfg.model.get("pretrained") and not resume:
        loaded = load_pretrained(module.net, cfg.model.name, cfg.model.pretrained)["loaded"]
        if module.hparams["model"]["stem"] == "small":
            conv = family_of(cfg.model.name).stem[0]
            how = (
                "keeps its pretrained 3x3 weights"
                if f"{conv}.weight" in loaded
                else "starts from random weights"
            )
            log.info("model.stem=small: the stem convolution (stride 1 now) %s; the rest is pretrained", how)
    return module


def _teacher(cfg: DictConfig) -> dict[str, Any] | None:
    """The distillation settings the student's checkpoint records: the teacher's checkpoint (a run or
    sweep dir resolved), its model, the temperature and alpha; None without a teacher."""
    found = check_distill(plain(cfg.get("distill")))
    if found is None:
        return None
    path, temperature, alpha = found
    model = read_checkpoint(path, "distill.teacher")["hyper_parameters"]["model"]["name"]
    return {"teacher": path, "teacher_model": model, "temperature": temperature, "alpha": alpha}


def _model_as_built(cfg: DictConfig, datamodule: ImageDataModule) -> dict[str, Any]:
    """The model config with `stem` as built (auto resolved at the data's input size, said in a line)."""
    model = plain(cfg.model)
    given = model.get("stem") or "imagenet"
    model["stem"] = resolve_stem(model["name"], given, datamodule.preprocess.image_size)
    if model["stem"] == "small":
        size = datamodule.preprocess.image_size
        how = "model.stem=auto picked it at" if given == "auto" else "at"
        log.info("%s: the small-image stem (3x3 stride 1, no max-pool), %s %d px", model["name"], how, size)
    return model


def _build_trainer(
    cfg: DictConfig, datamodule: ImageDataModule, extra: list[Callback], group: Path | None = None
) -> tuple[L.Trainer, ModelCheckpoint | None]:
    """The Trainer of `cfg.trainer` with the config's callbacks and loggers, and its checkpoint callback.
    What the config cannot know (no val split, no logger, callbacks=none) is adapted here, in one log line
    each."""
    # callbacks.NAME=null (or ~callbacks.NAME) turns one off; callbacks=none turns all off
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if cfg.trainer.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    callbacks += [TrainThroughput(), FitResults(), LoaderPosition(), *extra]
    report_from_val = cfg.get("report") and datamodule.has_val and not datamodule.has_test
    if report_from_val and not isinstance(datamodule, StreamingDataModule):
        callbacks.append(BestValPredictions())  # the page then shows them: val is not predicted again
    checkpoint = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    adapted: dict[str, Any] = {"enable_model_summary": True} if cfg.get("verbose") else {}
    if checkpoint is None:
        log.info("no checkpoint callback in the config: the run keeps no checkpoints")
        adapted["enable_checkpointing"] = False
    if not datamodule.has_val:
        log.warning(
            "no val split in %s: training without validation, keeping last.ckpt only", datamodule.root
        )
        adapted["limit_val_batches"] = 0
        if checkpoint is not None:
            checkpoint.monitor, checkpoint.save_top_k = None, 0
    if datamodule.task == "multilabel":
        _select_by_map(callbacks)
    loggers = build_loggers(cfg, group)
    if not loggers and any(isinstance(c, LearningRateMonitor) for c in callbacks):
        log.info("logger=none: the lr goes to metrics.csv only (LearningRateMonitor needs a logger)")
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **adapted, **_sweep_safe(cfg)
    )
    start_trackers(loggers, cfg)
    return trainer, checkpoint


def _select_by_map(callbacks: list[Callback]) -> None:
    """Multi-label data: callbacks watching val/top1 (the checkpoint, early stopping) watch val/map."""
    changed = []
    for callback in callbacks:
        if getattr(callback, "monitor", None) == "val/top1":
            callback.monitor = "val/map"
            changed.append(type(callback).__name__)
            if isinstance(callback, ModelCheckpoint) and callback.filename:
                callback.filename = callback.filename.replace("top1", "map")
    if changed:
        log.info("multi-label data: %s select by val/map (mean average precision)", ", ".join(changed))


def tune_thresholds_on_val(
    cfg: DictConfig, module: ClassificationModule, datamodule: ImageDataModule, ckpt: str
) -> list[float]:
    """Per-class thresholds maximising each class's F1 on the val split, for the best checkpoint's weights;
    set in `module` and written into `ckpt`, so eval, predict, export and the API use them."""
    if not datamodule.has_val:
        log.warning("threshold=tune: no val split to tune on; keeping 0.5")
        return module.thresholds.tolist()
    probs, target = val_outputs(module, datamodule, ckpt, cfg.trainer)
    chosen = tune_thresholds(probs, target)
    module.thresholds.copy_(torch.tensor(chosen))
    if ckpt:
        update_weights(Path(ckpt), {"thresholds": module.thresholds})
    before = macro_f1(probs, target, [0.5] * len(chosen))
    after = macro_f1(probs, target, chosen)
    log.info(
        "threshold=tune: per-class thresholds %s on val (macro F1 %.4f at 0.5 -> %.4f), saved in %s",
        ", ".join(f"{t:.2f}" for t in chosen),
        before,
        after,
        Path(ckpt).name if ckpt else "the model",
    )
    return chosen


def _calibrate(module: ClassificationModule, datamodule: ImageDataModule, ckpt: str, cfg: DictConfig) -> None:
    """calibrate=true: the tested checkpoint's temperature fitted on the val split, where it applies."""
    if module.multilabel:
        log.warning("calibrate=true: for single-label models; a multi-label model's are threshold=tune")
    elif not datamodule.has_val:
        log.warning("calibrate=true: no val split to fit a temperature on; the scores stay uncalibrated")
    else:
        calibrate_on_val(module, datamodule, ckpt, cfg.trainer)


def _test(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: ClassificationModule,
    datamodule: ImageDataModule,
    checkpoint: ModelCheckpoint | None,
    best: str,
) -> tuple[dict[str, Any], KeptPredictions | None]:
    """The test split's metrics for the best (else last) checkpoint, and its predictions where the report
    page will be written from them (shards name no image files to show); without a test split, the val
    predictions of the best checkpoint where they were kept."""
    streaming = isinstance(datamodule, StreamingDataModule)
    if not datamodule.has_test:
        kept = next((c for c in trainer.callbacks if isinstance(c, BestValPredictions)), None)
        return {}, kept if kept is not None and best and kept.of(best) and kept.count else None
    keep = bool(cfg.get("report")) and checkpoint is not None and not streaming
    predictions = TestPredictions() if keep else None
    tested = best or (_last(checkpoint) if checkpoint is not None else "")  # the file eval.json names
    results = _tester(trainer, cfg, predictions).test(
        module, datamodule=datamodule, ckpt_path=tested or None, verbose=False, weights_only=True
    )
    return (results[0] if results else {}), predictions


def _metrics(
    cfg: DictConfig,
    fit: dict[str, float | None],
    test: dict[str, Any],
    checkpoint: ModelCheckpoint | None,
    best: str,
    module: ClassificationModule,
    datamodule: ImageDataModule,
    run_dir: Path,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """metrics.json: the fit's and the test's results, the checkpoints, where the time went."""
    monitored = bool(best and checkpoint is not None and checkpoint.monitor)
    name = module.score_name  # top1, or a multi-label model's map
    scores: dict[str, Any] = {
        f"best_val_{name}": fit.get("fit/best_score") if monitored else None,
        "best_epoch": _epoch_of(best) if monitored else None,
        f"final_val_{name}": fit.get(f"val/{name}"),
    }
    tests = ("map", "f1_micro", "f1_macro") if module.multilabel else ("top1", "top5")
    scores.update({f"test_{key}": _float(test.get(f"test/{key}")) for key in tests})
    if module.multilabel:
        scores = {"task": "multilabel", **scores, "threshold": _threshold(module.thresholds.tolist())}
    elif module.calibration != 1.0:
        scores["temperature"] = round(module.calibration, 6)
    return {
        **scores,
        "test_images": _int(test.get("test/images")),
        "best_ckpt": _relative(best, run_dir),
        "last_ckpt": _relative(_last(checkpoint), run_dir) if checkpoint else None,
        "classes": module.classes,
        "model": cfg.model.name,
        "data": datamodule.location,
        "epochs": int(fit["fit/epochs"]),
        "global_step": int(fit["fit/global_step"]),
        "train_seconds": round(seconds["train"], 1),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "train_images_per_second": _round(fit.get("fit/images_per_second")),
    }


def write_run_report(
    cfg: DictConfig,
    run_dir: Path,
    metrics: dict[str, Any],
    predictions: KeptPredictions | None,
    datamodule: ImageDataModule,
) -> Path | None:
    """report.html at the end of training, or None (a warning) where it cannot be written: the run's results
    stand. Its eval/ (as `lightcls-eval` writes it) comes from the run's own predictions of the best (else
    last) checkpoint: its test, or without a test split, the best validation's, so no split is predicted
    again; where there are none, the val split is evaluated."""
    ckpt = metrics["best_ckpt"] or metrics["last_ckpt"]
    tested = predictions.count if predictions is not None else 0
    split = "val" if isinstance(predictions, BestValPredictions) else "test"
    try:
        if ckpt and tested:
            overrides = [f"ckpt_path={quote(run_dir / ckpt)}", f"paths.output_dir={quote(run_dir / 'eval')}"]
            probs, target = predictions.tensors()
            samples = datamodule.layout.splits[split][:tested]  # a limited split: its first batches, in order
            threshold = metrics.get("threshold")
            thresholds = (
                None
                if threshold is None
                else threshold
                if isinstance(threshold, list)
                else [threshold] * len(datamodule.classes)
            )
            write_evaluation(
                compose("eval", [*overrides, f"split={split}", *END_EVAL]),
                run_dir / ckpt,
                metrics["model"],
                datamodule,
                probs,
                target,
                samples,
                thresholds,
                metrics.get("temperature", 1.0),
            )
        settings = [f"accelerator={cfg.trainer.get('accelerator', 'auto')}"]  # where the run trained
        settings += [
            f"data.{k}={cfg.data[k]}"
            for k in ("batch_size", "num_workers")
            if isinstance(cfg.data.get(k), int)  # num_workers=auto: eval's own default
        ]
        return build_report(run_dir, eval_overrides=settings)
    except Exception as err:  # noqa: BLE001 - metrics.json and the checkpoints are written; the page is extra
        message = one_line(str(err))
        log.warning("report.html not written: %s (`lightcls-report %s` tries again)", message, run_dir)
        return None


def find_lr(trainer: L.Trainer, module: ClassificationModule, datamodule: ImageDataModule) -> float:
    """Lightning's learning-rate range test: set the module's `optimizer.lr` to its suggestion, and say so."""
    from lightning.pytorch.tuner import Tuner

    given = module.hparams["optimizer"].get("lr")
    epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = 10**6  # the range test takes its 100 steps however short the run
    try:
        finder = Tuner(trainer).lr_find(module, datamodule=datamodule, update_attr=False)
    finally:
        trainer.fit_loop.max_epochs = epochs
    chosen = finder.suggestion() if finder is not None else None
    if chosen is None:
        log.warning("lr_find: no suggestion (too few steps or a flat loss); keeping optimizer.lr=%s", given)
        return given
    module.hparams["optimizer"]["lr"] = float(chosen)
    log.info("lr_find: optimizer.lr=%.4g (the range test's suggestion; the config said %s)", chosen, given)
    return float(chosen)


def resume_from(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint fit continues from: `ckpt_path` (a sweep or search dir: its best run's last.ckpt), or,
    for a cluster job started again in its own run dir (a requeue), that dir's last.ckpt."""
    given = cfg.get("ckpt_path")
    if given:
        path = Path(str(given)).expanduser()
        if not (path / "summary.json").is_file():  # a file, or a folder check_resume refuses in one line
            return str(given)
        best = best_of_sweep(path)
        last = best.parent / "last.ckpt"
        log.info("ckpt_path=%s: continuing its best run from %s", given, last if last.is_file() else best)
        return str(last if last.is_file() else best)
    last = run_dir / "checkpoints" / "last.ckpt"
    if requeued() and last.is_file():
        log.info("a requeued job: continuing from this run dir's own %s", last)
        return str(last)
    return None


def _log_hparams(loggers: list, cfg: DictConfig, metrics: dict[str, Any]) -> None:
    """The run's settings with its final metrics, for TensorBoard's HPARAMS view (compare a sweep's jobs)."""
    board = [lg for lg in loggers if isinstance(lg, TensorBoardLogger)]
    if not board:
        return
    chosen = {k: plain(cfg[k]) for k in ("model", "data", "optimizer", "scheduler") if k in cfg}
    params = {f"{group}.{key}": value for group, node in chosen.items() for key, value in flat(node).items()}
    params.update({"seed": cfg.seed, "trainer.max_epochs": cfg.trainer.max_epochs})
    params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
    final = {
        f"hp/{key}": metrics[key]
        for key in (
            "best_val_top1",
            "final_val_top1",
            "test_top1",
            "best_val_map",
            "final_val_map",
            "test_map",
        )
        if metrics.get(key) is not None
    }
    for logger in board:
        logger.log_hyperparams(params, final)
        logger.finalize("success")


def _board_confusion(loggers: list, module: ClassificationModule, step: int) -> None:
    """The test's confusion matrix as a picture in TensorBoard (as eval's confusion_matrix.png)."""
    board = [lg for lg in loggers if isinstance(lg, TensorBoardLogger)]
    counts = module.test_confusion_counts
    if not board or counts is None:
        return
    buffer = io.BytesIO()
    plot_confusion_matrix(counts, module.classes, buffer)
    png = buffer.getvalue()
    with Image.open(io.BytesIO(png)) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    for logger in board:
        logger.experiment.add_image("test/confusion_matrix", pixels, step, dataformats="HWC")


def _tester(trainer: L.Trainer, cfg: DictConfig, predictions: TestPredictions | None) -> L.Trainer:
    """The trainer that tests (keeping the `predictions` where given): the fit's own on one device; after a
    multi-device fit, a fresh one-device trainer, so every test image counts exactly once (a
    DistributedSampler pads the split with repeats)."""
    kept = [predictions] if predictions is not None else []
    if trainer.world_size == 1:
        # a checkpoint's weights are the averaged ones: WeightAveraging (EMA) would load the raw ones back
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)] + kept
        return trainer
    log.info("testing on one device (the fit ran on %d)", trainer.world_size)
    return L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        precision=cfg.trainer.get("precision", "32-true"),
        logger=trainer.loggers or False,
        callbacks=kept,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=trainer.default_root_dir,
        plugins=[AtomicCheckpointIO()],
    )


def _release_process_group() -> None:
    """End this rank's process group after a multi-process fit (Lightning leaves gloo groups up), so a
    later one-device test does not wait on ranks that have finished."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _interrupted(stop: BaseException, callbacks: list) -> None:
    """Turn Lightning's exit after Ctrl-C/SIGTERM into `Interrupted`, naming the checkpoint to resume."""
    saver = next((c for c in callbacks if isinstance(c, CheckpointOnInterrupt)), None)
    if saver is None or saver.saved is None:
        raise stop
    sigterm = isinstance(stop, SIGTERMException)
    raise Interrupted(
        f"{'SIGTERM' if sigterm else 'Ctrl-C'}: saved {saver.saved}; resume with ckpt_path={saver.saved}",
        143 if sigterm else 130,
    ) from None


def print_summary(metrics: dict[str, Any], run_dir: Path) -> None:
    """A short table of the run's results."""
    table = Table(title=f"lightcls: {metrics['model']} on {Path(metrics['data']).name}", show_header=False)
    if metrics.get("task") == "multilabel":
        scores: tuple[str, ...] = ("best_val_map", "best_epoch", "test_map", "test_f1_micro", "test_f1_macro")
    else:
        scores = ("best_val_top1", "best_epoch", "test_top1", "test_top5", "temperature")
    for key in (*scores, "epochs", "train_seconds", "train_images_per_second"):
        if key not in metrics:  # a temperature: only where calibrate=true fitted one
            continue
        value = metrics[key]
        table.add_row(
            key,
            "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value),
        )
    parts = metrics.get("seconds") or {}
    table.add_row("seconds", "  ".join(f"{k} {v}" for k, v in parts.items() if v is not None))
    table.add_row("run dir", str(run_dir))
    table.add_row("best ckpt", str(metrics["best_ckpt"] or "-"))
    Console().print(table)


def _threshold(values: list[float]) -> float | list[float]:
    """One number when every class shares it, else the per-class list."""
    rounded = [round(v, 4) for v in values]
    return rounded[0] if len(set(rounded)) == 1 else rounded


def _sweep_safe(cfg: DictConfig) -> dict[str, Any]:
    """In a multirun, plain `ddp` would re-launch the whole sweep per rank: use `ddp_spawn` there."""
    if cfg.trainer.get("strategy") != "ddp" or not HydraConfig.initialized():
        return {}
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    log.warning("trainer.strategy=ddp inside a multirun: using ddp_spawn so ranks stay in this job")
    return {"strategy": "ddp_spawn"}


def _last(checkpoint: ModelCheckpoint) -> str:
    """last.ckpt's path (ddp_spawn workers hand back only the best path, so look on disk too)."""
    on_disk = (
        Path(checkpoint.dirpath or ".") / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
    )
    return checkpoint.last_model_path or (str(on_disk) if checkpoint.save_last and on_disk.is_file() else "")


def _float(value: Any) -> float | None:
    return None if value is None else float(value.item() if isinstance(value, torch.Tensor) else value)


def _int(value: Any) -> int | None:
    return None if value is None else round(_float(value))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _epoch_of(ckpt: str) -> int:
    """1-based epoch a checkpoint was saved at (mmap: the weights are not read)."""
    return int(torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["epoch"]) + 1


def _relative(path: str | None, run_dir: Path) -> str | None:
    if not path:
        return None
    path_ = Path(path).resolve()
    return path_.relative_to(run_dir).as_posix() if path_.is_relative_to(run_dir) else str(path_)
