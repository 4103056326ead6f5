"""The LightningModule: a backbone, cross-entropy, top-k accuracy, optimizer and schedule from config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric, Metric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MultilabelF1Score
from torchvision.transforms import v2

from lightcls.ckpt import read_checkpoint
from lightcls.data import ImageDataModule
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError
from lightcls.evaluation.metrics import binarize, mean_average_precision
from lightcls.models import build_model
from lightcls.training.distill import Teacher, distill_loss
from lightcls.training.optim import build_optimizer, build_schedule, continued_schedule
from lightcls.training.preprocessor import BatchPreprocessor
from lightcls.training.records import EpochRecorder

log = logging.getLogger(__name__)


class ClassificationModule(L.LightningModule):
    """Image classifier whose hyperparameters are plain data, so a checkpoint alone rebuilds it.

    Batches arrive as uint8 images and are normalized here, on the model's device, by the checkpoint's
    own `Preprocess`; `forward` takes the normalized float batch.

    Args:
        model: the model config (`name`; `stem`: imagenet or small, as built; `channels_last` and `compile`
            apply on a GPU), as in conf/model/.
        classes: class names; index i is label i.
        preprocess: the input contract: `image_size`, `channels`, `mean`, `std`.
        optimizer: a `_partial_: true` optimizer config, called with the parameters.
        scheduler: `schedule` (a `_partial_: true` scheduler config) plus optional
            `warmup_epochs`/`warmup_start_factor`; empty or None for a constant lr.
        label_smoothing: cross-entropy label smoothing.
        mix: batch-level MixUp/CutMix for training: `mixup` and `cutmix` are their Beta alphas (0: off; both
            on: one of the two per batch). The loss takes the mixed soft targets; top-1 the hard labels.
        class_weights: per-class weights of the loss (data.balance=loss), or None; for a multi-label
            model, BCE's `pos_weight` (each class's negatives/positives ratio).
        task: "multiclass" (one label per image: softmax, cross-entropy, top-k accuracy) or "multilabel"
            (several: sigmoid, BCE or ASL, mAP and F1 at per-class thresholds); taken from the data.
        loss: `name`: auto (cross-entropy, or BCE for multi-label), bce, or asl (multi-label's asymmetric
            loss, with `gamma_neg`, `gamma_pos`, `clip`).
        distill: `teacher` (a checkpoint), `temperature`, `alpha`: training adds the teacher's softened
            outputs as a target (lightcls.training.distill); the teacher is loaded when fitting starts and
            is no part of this model's weights.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        classes: Sequence[str],
        preprocess: Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        label_smoothing: float = 0.0,
        mix: Mapping[str, float] | None = None,
        class_weights: Sequence[float] | None = None,
        task: str = "multiclass",
        loss: Mapping[str, Any] | None = None,
        distill: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise LightclsError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        self.save_hyperparameters()
        num_classes = len(classes)
        self.multilabel = task == "multilabel"
        self.preprocess = Preprocess.from_dict(preprocess)
        self.net = build_model(
            model["name"],
            num_classes,
            self.preprocess.channels,
            stem=model.get("stem") or "imagenet",
            image_size=self.preprocess.image_size,
        )
        self.criterion = build_loss(loss or {}, task, class_weights, label_smoothing)
        self.mix = build_mix(mix or {}, num_classes)
        # the training metrics update every step: no argument checks or NaN test (each a host-device sync
        # on a GPU); the labels were checked with the data, and a NaN loss shows in the epoch's line
        self.train_loss = MeanMetric(nan_strategy="disable")
        if self.multilabel:
            # a label is predicted at probability >= its threshold (tuned ones are saved with the weights)
            self.register_buffer("thresholds", torch.full((num_classes,), DEFAULT_THRESHOLD))
            self.train_top1 = MultilabelF1Score(num_classes, average="micro", validate_args=False)
            scores: dict[str, Metric] = {
                "map": MeanAveragePrecision(),
                "f1_micro": MultilabelF1Score(num_classes, average="micro"),
                "f1_macro": MultilabelF1Score(num_classes, average="macro"),
            }
        else:
            # logits are divided by it for probabilities: 1 until calibrate=true fits it on the val split
            self.register_buffer("temperature", torch.ones(()))
            self.train_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro", validate_args=False)
            scores = {"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
            if num_classes > 5:
                scores["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
        self.val_metrics = MetricCollection(scores, prefix="val/")
        self.test_metrics = self.val_metrics.clone(prefix="test/")
        self.test_confusion = MulticlassConfusionMatrix(num_classes) if not self.multilabel else None
        self.test_images = SumMetric()
        self.test_confusion_counts: list[list[int]] | None = None
        self.preprocessor = BatchPreprocessor(self.preprocess, self.mix)
        self._recorder = EpochRecorder()
        self._train_steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._epoch_lrs: list[float] = []
        self._lrs_epoch = 0  # the 1-based epoch that trained at _epoch_lrs
        self._resumed_lrs: list[float] = []
        self._resumed_lrs_epoch = 0
        self._validated_epoch = -1  # the last epoch whose validation ran (every N epochs: not each one)
        self._teacher: Teacher | None = None  # set when fitting starts, never a submodule (not saved)
        #: the training metric's name: top-1 accuracy, or a multi-label model's micro F1 at its thresholds
        self.train_name = "f1" if self.multilabel else "top1"
        #: the validation metrics of the per-epoch record
        self.val_names = ("map", "f1_micro", "f1_macro") if self.multilabel else ("top1", "top5")

    @classmethod
    def from_checkpoint(cls, path: str | Path, what: str = "ckpt_path") -> ClassificationModule:
        """The module of a lightcls checkpoint, rebuilt from the checkpoint alone, on the CPU in eval mode."""
        ckpt = read_checkpoint(path, what)
        hparams = ckpt["hyper_parameters"]
        module = cls(**{k: v for k, v in hparams.items() if not k.startswith("_")})
        try:
            module.load_state_dict(ckpt["state_dict"])
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise LightclsError(f"{what}={path}: its weights do not fit its model ({first})") from err
        return module.eval()

    @property
    def classes(self) -> list[str]:
        """Class names; index i is label i."""
        return list(self.hparams["classes"])

    @property
    def task(self) -> str:
        """ "multiclass" or "multilabel"."""
        return "multilabel" if self.multilabel else "multiclass"

    @property
    def score_name(self) -> str:
        """The validation metric that picks the best checkpoint: `top1`, or `map` for a multi-label model."""
        return "map" if self.multilabel else "top1"

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities for logits: softmax at the model's temperature, or each label's sigmoid for a
        multi-label model."""
        logits = logits.float()
        return logits.sigmoid() if self.multilabel else (logits / self.temperature).softmax(dim=-1)

    @property
    def calibration(self) -> float:
        """The temperature its softmax divides the logits by (1.0: not calibrated, or multi-label)."""
        return 1.0 if self.multilabel else float(self.temperature)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":  # Lightning sets it around each hook, ~40 times a step
            self.__dict__[name] = value  # a plain string: nn.Module's checks cost ~2 us each
            return
        super().__setattr__(name, value)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # a checkpoint from before calibration existed holds no temperature: it is 1
        if not self.multilabel:
            state_dict.setdefault(f"{prefix}temperature", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _predicted(self, logits: torch.Tensor) -> torch.Tensor:
        """What accuracy-like metrics take: logits, or a multi-label model's 0/1 labels at its thresholds."""
        return binarize(logits.sigmoid(), self.thresholds) if self.multilabel else logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a normalized batch."""
        return self.net(x)

    def on_fit_start(self) -> None:
        """GPU recipe switches: channels_last memory format and torch.compile of the backbone.

        A compiled backbone picks its own memory layout (inductor's layout optimization); channels_last
        weights under compile fail in inductor's convolution backward (seen with torch 2.11 on an H100),
        so channels_last applies to eager runs only.
        """
        options = self.hparams["model"]
        self.preprocessor.channels_last = (
            bool(options.get("channels_last")) and not options.get("compile") and self.device.type == "cuda"
        )
        if self.preprocessor.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if options.get("compile"):
            self.net.compile()  # in place: state_dict keys stay those of the plain backbone
        distill = self.hparams.get("distill") or {}
        if distill.get("teacher"):
            object.__setattr__(self, "_teacher", self._load_teacher(distill))

    def _load_teacher(self, distill: Mapping[str, Any]) -> Teacher:
        """The frozen teacher of `distill`, on this model's device; its classes must be this model's."""
        path = distill["teacher"]
        teacher = ClassificationModule.from_checkpoint(path, what="distill.teacher")
        if teacher.classes != self.classes or teacher.multilabel != self.multilabel:
            raise LightclsError(
                f"distill.teacher={path}: its classes ({', '.join(teacher.classes)}) are not the data's "
                f"({', '.join(self.classes)})"
            )
        log.info(
            "distilling from %s (%s): temperature %g, alpha %g",
            teacher.hparams["model"]["name"],
            path,
            distill["temperature"],
            distill["alpha"],
        )
        return Teacher(teacher.net, teacher.preprocess, self.preprocess).to(self.device)

    def setup(self, stage: str) -> None:
        """Take the DataModule's device work for training batches (none when fit on plain loaders)."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if stage == "fit" and isinstance(datamodule, ImageDataModule):
            self.preprocessor.work = datamodule.device_work()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """The batch preprocessor, on the device: the model's input (and soft targets under MixUp/CutMix)."""
        training = self._trainer is not None and self.trainer.training
        return self.preprocessor(batch, training)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y, *soft = batch
        logits = self(x)
        loss = self.criterion(logits, soft[0] if soft else y)
        if self._teacher is not None:  # the teacher sees the same (mixed) images
            distill = self.hparams["distill"]
            kd = distill_loss(logits, self._teacher(x), distill["temperature"], self.multilabel)
            loss = distill["alpha"] * kd + (1 - distill["alpha"]) * loss
        predicted = self._predicted(logits.detach())
        self._train_steps.append((predicted if self.multilabel else predicted.argmax(1), y, loss.detach()))
        if len(self._train_steps) >= TRAIN_METRICS_EVERY:
            self._update_train_metrics()
        every = self.trainer.log_every_n_steps
        if (
            every and (self.global_step + 1) % every == 0
        ):  # when Lightning writes step logs: self.log is ~0.5 ms
            self.log("train/loss_step", loss, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        """A run resumed mid-epoch (after SIGTERM) times its epoch from here and records the lr it trains at
        (Lightning skips `on_train_epoch_start` then); a resumed run whose `max_epochs` changed continues its
        cosine schedule over the new length."""
        if self.trainer.fit_loop.restarted_mid_epoch:
            self._epoch_lrs = [float(group["lr"]) for group in self.trainer.optimizers[0].param_groups]
            self._lrs_epoch = self.current_epoch + 1
            self._recorder.epoch_start()
        configs = self.trainer.lr_scheduler_configs
        if not self._resumed_lrs or not configs or configs[0].interval == "step":
            return
        continued = continued_schedule(
            configs[0].scheduler, self._resumed_lrs, self.current_epoch, self.trainer.max_epochs
        )
        if continued is not None:
            configs[0].scheduler = continued
            log.info(
                "continuing the cosine schedule from lr %.4g (epoch %d's) over epochs %d-%d",
                self._resumed_lrs[0],
                self._resumed_lrs_epoch or self.current_epoch,
                self.current_epoch + 1,
                self.trainer.max_epochs,
            )

    def on_train_epoch_start(self) -> None:
        self._train_steps.clear()
        self._epoch_lrs = [float(group["lr"]) for group in self.trainer.optimizers[0].param_groups]
        self._lrs_epoch = self.current_epoch + 1
        self._recorder.epoch_start()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def train_scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's training loss and top-1 (multi-label: micro F1) over the steps trained so far."""
        self._update_train_metrics()
        return self.train_loss.compute(), self.train_top1.compute()

    def _update_train_metrics(self) -> None:
        """Hand the kept steps' predictions and losses to the training metrics in one update each: an update
        is 50-90 us of Python, ~1% of a lenet step on a CPU."""
        if not self._train_steps:
            return
        predicted, labels, losses = zip(*self._train_steps, strict=True)
        self._train_steps.clear()
        targets = torch.cat(labels)
        self.train_top1.update(torch.cat(predicted), targets.long() if self.multilabel else targets)
        sizes = [len(y) for y in labels]
        # each step's mean loss once per image (MeanMetric drops its weights when nan_strategy="disable")
        # (no host-device sync on a GPU: the counts go over without waiting, the output size is known)
        counts = torch.tensor(sizes).to(losses[0].device, non_blocking=True)
        per_image = torch.stack(losses).repeat_interleave(counts, output_size=sum(sizes))
        self.train_loss.update(per_image)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._recorder.batch_start(len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._recorder.batch_end()

    def on_train_epoch_end(self) -> None:
        """Log the epoch's train loss and top-1 (synced across ranks), and write the epoch's record."""
        loss, top1 = self.train_scores()
        self.train_loss.reset()
        self.train_top1.reset()
        self.log("train/loss_epoch", loss, sync_dist=True)
        self.log(f"train/{self.train_name}", top1, sync_dist=True)
        if not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        metrics = self.trainer.callback_metrics if self._validated_epoch == self.current_epoch else {}
        values = {
            "epoch": self.current_epoch + 1,
            "train_loss": float(loss),
            f"train_{self.train_name}": float(top1),
            "lr": self._epoch_lrs[0] if self._epoch_lrs else None,
            **{f"val_{k}": _item(metrics.get(f"val/{k}")) for k in ("loss", *self.val_names)},
        }
        if self.device.type == "cuda":
            values["gpu_peak_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        folder = self.trainer.default_root_dir
        self._recorder.write(
            values, self.trainer.max_epochs, Path(folder) / "metrics.csv" if folder else None, self.task
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the lr the last epoch trained at: a continued run's schedule starts from it."""
        checkpoint["lightcls"] = {"epoch_lrs": list(self._epoch_lrs), "lrs_epoch": self._lrs_epoch}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("lightcls") or {}
        self._resumed_lrs = list(saved.get("epoch_lrs") or [])
        self._resumed_lrs_epoch = int(saved.get("lrs_epoch") or 0)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The batch's logits (a BestValPredictions callback keeps them), after updating the val metrics."""
        return self._eval_step(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._validated_epoch = self.current_epoch

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The batch's logits (a TestPredictions callback keeps them), after updating the test metrics."""
        logits = self._eval_step(batch, self.test_metrics, "test")
        self.test_images.update(len(logits))
        if self.test_confusion is not None:
            self.test_confusion.update(logits, batch[1])
        return logits

    def on_test_epoch_end(self) -> None:
        """Log how many images were tested; keep the confusion matrix (`test_confusion_counts`)."""
        self.log("test/images", self.test_images.compute().float())
        self.test_images.reset()
        if self.test_confusion is None:
            return
        #: the last test's confusion matrix (rows: true class), as lists: the training run draws it once
        self.test_confusion_counts = self.test_confusion.compute().tolist()
        self.test_confusion.reset()

    def _eval_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], metrics: MetricCollection, split: str
    ) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        if self.multilabel:
            metrics["map"].update(logits.sigmoid(), y)
            predicted = self._predicted(logits)
            for name in ("f1_micro", "f1_macro"):
                metrics[name].update(predicted, y.long())
        else:
            metrics.update(logits, y)
        self.log(f"{split}/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log_dict(metrics, on_epoch=True, prog_bar=True, batch_size=len(y))
        return logits

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities for a batch (images, or (images, labels))."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.probabilities(self(x))

    def configure_optimizers(self) -> Any:
        """The optimizer and per-epoch schedule of the run's config (lightcls.training.optim)."""
        optimizer = build_optimizer(self.hparams["optimizer"], self)
        config = self.hparams.get("scheduler") or {}
        interval = config.get("interval", "epoch")
        steps = 1.0
        if interval == "step":  # the schedule's lengths are in epochs: count them in optimizer steps
            steps = self.trainer.estimated_stepping_batches / max(self.trainer.max_epochs or 1, 1)
        scheduler = build_schedule(config, optimizer, steps_per_epoch=steps)
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }


TASKS = ("multiclass", "multilabel")
LOSSES = ("auto", "ce", "bce", "asl")
DEFAULT_THRESHOLD = 0.5
#: training steps kept before their predictions and losses update the training metrics
TRAIN_METRICS_EVERY = 50


def build_loss(
    config: Mapping[str, Any], task: str, class_weights: Sequence[float] | None, label_smoothing: float
) -> nn.Module:
    """The loss of `config["name"]` for `task`: auto is cross-entropy (single-label) or BCE (multi-label)."""
    name = config.get("name", "auto")
    if name not in LOSSES:
        raise LightclsError(f"loss={name}: choose one of {', '.join(LOSSES)}")
    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    if task == "multiclass":
        if name in ("bce", "asl"):
            raise LightclsError(
                f"loss={name} is for multi-label data (several labels per image); this data set gives one "
                "label per image: use loss=auto (cross-entropy)"
            )
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
    if name == "ce":
        raise LightclsError("loss=ce needs one label per image; this data set is multi-label: use loss=auto")
    if name == "asl":
        options = {k: float(config[k]) for k in ("gamma_neg", "gamma_pos", "clip") if k in config}
        return AsymmetricLoss(**options, pos_weight=weight, label_smoothing=label_smoothing)
    return SmoothedBCE(pos_weight=weight, label_smoothing=label_smoothing)


class SmoothedBCE(nn.BCEWithLogitsLoss):
    """BCE with logits whose targets are smoothed towards 0.5 by `label_smoothing`."""

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__(pos_weight=pos_weight)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return super().forward(logits, target)


class AsymmetricLoss(nn.Module):
    """The asymmetric loss for multi-label data (Ridnik et al., ICCV 2021): focusing `gamma_neg` on
    negatives and `gamma_pos` on positives, and negatives' probabilities shifted down by `clip`, so the
    many easy negatives weigh less. Averaged over every label as BCE is. Hand-written: neither torch nor
    torchvision has it (timm's is not a dependency)."""

    def __init__(
        self,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        pos_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.gamma_neg, self.gamma_pos, self.clip = gamma_neg, gamma_pos, clip
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = logits.float().sigmoid()
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        pos = target * nn.functional.logsigmoid(logits.float()) * (1 - p) ** self.gamma_pos
        if self.pos_weight is not None:
            pos = pos * self.pos_weight
        neg = (1 - target) * torch.log((1 - p_neg).clamp(min=1e-8)) * p_neg**self.gamma_neg
        return -(pos + neg).mean()


class MeanAveragePrecision(Metric):
    """mAP over the epoch's images (lightcls.evaluation.metrics.mean_average_precision: classes with no
    positive image left out, as mmpretrain does; torchmetrics' macro average counts them as 0)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        self.probs.append(probs.detach().float())
        self.target.append(target.detach().long())

    def compute(self) -> torch.Tensor:
        probs = torch.cat(self.probs) if isinstance(self.probs, list) else self.probs
        target = torch.cat(self.target) if isinstance(self.target, list) else self.target
        return torch.tensor(mean_average_precision(probs.cpu(), target.cpu()))


def build_mix(config: Mapping[str, float], num_classes: int) -> v2.Transform | None:
    """torchvision's batch MixUp and/or CutMix (one of them per batch) for these alphas; None when off."""
    mixes = []
    for key, mix in (("mixup", v2.MixUp), ("cutmix", v2.CutMix)):
        alpha = config.get(key) or 0.0
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0:
            raise LightclsError(f"{key} must be a number >= 0 (its Beta alpha; 0: off), got {alpha!r}")
        if alpha > 0:
            mixes.append(mix(alpha=float(alpha), num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


def _item(value: Any) -> float | None:
    """A logged metric as a float (None when it was not logged)."""
    return None if value is None else float(value)
