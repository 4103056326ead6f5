"""The LightningModule: a backbone, cross-entropy, top-k accuracy, optimizer and schedule from config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix
from torchvision.transforms import v2

from lightcls.ckpt import read_checkpoint
from lightcls.data import ImageDataModule
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError
from lightcls.evaluation import confusion_matrix_figure
from lightcls.evaluation.fonts import figure_fonts
from lightcls.models import build_model
from lightcls.training.optim import build_optimizer, build_schedule, continued_schedule
from lightcls.training.preprocessor import BatchPreprocessor
from lightcls.training.records import EpochRecorder

log = logging.getLogger(__name__)


class ClassificationModule(L.LightningModule):
    """Image classifier whose hyperparameters are plain data, so a checkpoint alone rebuilds it.

    Batches arrive as uint8 images and are normalized here, on the model's device, by the checkpoint's
    own `Preprocess`; `forward` takes the normalized float batch.

    Args:
        model: the model config (`name`; `channels_last` and `compile` apply on a GPU), as in conf/model/.
        classes: class names; index i is label i.
        preprocess: the input contract: `image_size`, `channels`, `mean`, `std`.
        optimizer: a `_partial_: true` optimizer config, called with the parameters.
        scheduler: `schedule` (a `_partial_: true` scheduler config) plus optional
            `warmup_epochs`/`warmup_start_factor`; empty or None for a constant lr.
        label_smoothing: cross-entropy label smoothing.
        mix: batch-level MixUp/CutMix for training: `mixup` and `cutmix` are their Beta alphas (0: off; both
            on: one of the two per batch). The loss takes the mixed soft targets; top-1 the hard labels.
        class_weights: per-class weights of the loss (data.balance=loss), or None.
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
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        num_classes = len(classes)
        self.preprocess = Preprocess.from_dict(preprocess)
        self.net = build_model(model["name"], num_classes, self.preprocess.channels)
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.mix = build_mix(mix or {}, num_classes)
        self.train_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.train_loss = MeanMetric()
        topk = {"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
        if num_classes > 5:
            topk["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
        self.val_metrics = MetricCollection(topk, prefix="val/")
        self.test_metrics = self.val_metrics.clone(prefix="test/")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        self.preprocessor = BatchPreprocessor(self.preprocess, self.mix)
        self._recorder = EpochRecorder()
        self._epoch_lrs: list[float] = []
        self._lrs_epoch = 0  # the 1-based epoch that trained at _epoch_lrs
        self._resumed_lrs: list[float] = []
        self._resumed_lrs_epoch = 0
        self._validated_epoch = -1  # the last epoch whose validation ran (every N epochs: not each one)

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
        self.train_top1.update(logits.detach(), y)
        self.train_loss.update(loss.detach(), len(y))
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
        self._epoch_lrs = [float(group["lr"]) for group in self.trainer.optimizers[0].param_groups]
        self._lrs_epoch = self.current_epoch + 1
        self._recorder.epoch_start()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._recorder.batch_start(len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._recorder.batch_end()

    def on_train_epoch_end(self) -> None:
        """Log the epoch's train loss and top-1 (synced across ranks), and write the epoch's record."""
        loss, top1 = self.train_loss.compute(), self.train_top1.compute()
        self.train_loss.reset()
        self.train_top1.reset()
        self.log("train/loss_epoch", loss, sync_dist=True)
        self.log("train/top1", top1, sync_dist=True)
        if not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        metrics = self.trainer.callback_metrics if self._validated_epoch == self.current_epoch else {}
        values = {
            "epoch": self.current_epoch + 1,
            "train_loss": float(loss),
            "train_top1": float(top1),
            "lr": self._epoch_lrs[0] if self._epoch_lrs else None,
            **{f"val_{k}": _item(metrics.get(f"val/{k}")) for k in ("loss", "top1", "top5")},
        }
        if self.device.type == "cuda":
            values["gpu_peak_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        folder = self.trainer.default_root_dir
        self._recorder.write(
            values, self.trainer.max_epochs, Path(folder) / "metrics.csv" if folder else None
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the lr the last epoch trained at: a continued run's schedule starts from it."""
        checkpoint["lightcls"] = {"epoch_lrs": list(self._epoch_lrs), "lrs_epoch": self._lrs_epoch}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("lightcls") or {}
        self._resumed_lrs = list(saved.get("epoch_lrs") or [])
        self._resumed_lrs_epoch = int(saved.get("lrs_epoch") or 0)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._validated_epoch = self.current_epoch

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The batch's logits (a TestPredictions callback keeps them), after updating the test metrics."""
        logits = self._eval_step(batch, self.test_metrics, "test")
        self.test_confusion.update(logits, batch[1])
        return logits

    def on_test_epoch_end(self) -> None:
        """Log how many images were tested and show the confusion matrix in TensorBoard."""
        counts = self.test_confusion.compute()
        self.test_confusion.reset()
        self.log("test/images", counts.sum().float())
        matrix = counts.tolist()
        loggers = [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        if loggers and self.trainer.is_global_zero:
            with figure_fonts():  # drawn when added
                figure = confusion_matrix_figure(matrix, self.classes)
                for logger in loggers:
                    logger.experiment.add_figure("test/confusion_matrix", figure, self.global_step)

    def _eval_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], metrics: MetricCollection, split: str
    ) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        metrics.update(logits, y)
        self.log(f"{split}/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log_dict(metrics, on_epoch=True, prog_bar=True, batch_size=len(y))
        return logits

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities for a batch (images, or (images, labels))."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).softmax(dim=-1)

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
