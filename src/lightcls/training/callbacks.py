"""Lightning callbacks: a checkpoint on interruption, per-epoch seeding, throughput, the fit's results."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, RandomSampler

from lightcls.ckpt.io import link_over
from lightcls.data.shards import ShardLoader

log = logging.getLogger(__name__)


class CheckpointOnInterrupt(Callback):
    """On Ctrl-C or SIGTERM, save `last.ckpt` where ModelCheckpoint keeps it, so `ckpt_path=` resumes.

    Lightning stops on SIGTERM after the current batch (SIGTERMException) and on Ctrl-C at once
    (KeyboardInterrupt), calling `on_exception` in both cases; ModelCheckpoint's own
    `save_on_exception` would also save on every other error and write a misleading `best-*` file.
    """

    def __init__(self) -> None:
        self.saved: str | None = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or trainer.sanity_checking:
            return
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        folder = (
            Path(checkpoint.dirpath) if checkpoint and checkpoint.dirpath else Path(trainer.default_root_dir)
        )
        path = folder / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"
        if checkpoint is not None:  # recorded in the saved state, so the resumed run overwrites this file
            checkpoint.last_model_path = str(path)
        trainer.save_checkpoint(path)
        self.saved = str(path)
        log.warning(
            "%s at epoch %d, step %d: saved %s; resume with ckpt_path=%s",
            "SIGTERM" if isinstance(exception, SIGTERMException) else "Ctrl-C",
            trainer.current_epoch,
            trainer.global_step,
            path,
            path,
        )


class EpochCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose `last.ckpt` holds the end of every epoch, whatever val does.

    The installed ModelCheckpoint writes `last.ckpt` only in a step where it also saves a top-k file, so
    after a plateau `last.ckpt` stays at the last improvement; validation has run by `on_train_epoch_end`.
    Where a top-k file was just written at the same step, `last.ckpt` becomes a hard link to it, renamed
    into place (lightcls.ckpt.io.link_over): atomic as a write, and no second copy of the same state
    (resnet18 with AdamW: 134 MB and 0.35 s a save here). Lightning's `save_last="link"` makes a symlink
    after removing the old file: not atomic, and it dangles once that top-k file is replaced.
    """

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key, built again only when what it names changes: Lightning formats it around
        every hook call of every step."""
        named = (self.monitor, self.mode, self._every_n_train_steps, self._every_n_epochs)
        if getattr(self, "_key_of", None) != (*named, self._train_time_interval):
            self._key_of, self._key = (*named, self._train_time_interval), super().state_key
        return self._key

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            return  # nothing is saved within an epoch: skip ModelCheckpoint's per-step checks (~20 us)
        super().on_train_batch_end(trainer, pl_module, *args)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        source = self._last_checkpoint_saved  # the file this step already wrote, if any
        local = "://" not in f"{source}{filepath}"
        last = Path(filepath).name.startswith(self.CHECKPOINT_NAME_LAST)
        if (
            local
            and last
            and source
            and source != filepath
            and self._last_global_step_saved == trainer.global_step
        ):
            linked = True
            if trainer.is_global_zero:
                try:
                    link_over(Path(source), Path(filepath))
                except OSError:  # no hard links on this filesystem: write it
                    linked = False
            if trainer.strategy.broadcast(linked):
                self._last_checkpoint_saved = filepath
                for logger in trainer.loggers if trainer.is_global_zero else []:
                    logger.after_save_checkpoint(proxy(self))
                return
        super()._save_checkpoint(trainer, filepath)


class KeptPredictions(Callback):
    """Class probabilities (the module's `probabilities`: softmax, or sigmoid for multi-label) and labels
    of a split's batches, in order: what an evaluation's files are written from; `raw`: the logits instead
    (what a temperature is fitted to)."""

    def __init__(self, raw: bool = False) -> None:
        self.raw = raw
        self.probs: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self._filling: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    @property
    def count(self) -> int:
        """How many images were predicted."""
        return sum(len(labels) for labels in self.labels)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All probabilities (N, classes) and labels (N)."""
        return torch.cat(self.probs), torch.cat(self.labels)

    def _keep(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """A batch's probabilities (its step returns the logits) and labels, onto the lists being filled."""
        if self._filling is None or trainer.sanity_checking or not isinstance(outputs, torch.Tensor):
            return
        outputs = outputs.detach().float() if self.raw else pl_module.probabilities(outputs.detach())
        self._filling[0].append(outputs.cpu())
        self._filling[1].append(batch[1].detach().cpu())


class TestPredictions(KeptPredictions):
    """Every test batch's predictions."""

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.probs, self.labels = [], []
        self._filling = (self.probs, self.labels)

    on_test_batch_end = KeptPredictions._keep


class BestValPredictions(KeptPredictions):
    """The val split's probabilities and labels from the validation that gave the best checkpoint (the one
    ModelCheckpoint keeps), so the end-of-run report of a run without a test split shows them instead of
    predicting the val split again. Kept on one device only (a DDP rank validates its shard)."""

    def __init__(self) -> None:
        super().__init__()
        self.best: tuple[str, float] | None = None  # the checkpoint (path, score) they are of
        self._latest: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._adopt(trainer)  # ModelCheckpoint has judged the last validation (on its end, or its epoch's)
        self._filling = ([], []) if trainer.world_size == 1 else None

    on_validation_batch_end = KeptPredictions._keep

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and self._filling is not None and self._filling[0]:
            self._latest = self._filling

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._adopt(trainer)

    def of(self, ckpt: str | Path) -> bool:
        """Whether the kept predictions are of checkpoint `ckpt`."""
        return self.best is not None and Path(self.best[0]).resolve() == Path(ckpt).resolve()

    def _adopt(self, trainer: L.Trainer) -> None:
        """The latest validation's predictions, where it made a new best checkpoint."""
        checkpoint = trainer.checkpoint_callback
        score = getattr(checkpoint, "best_model_score", None)
        if (
            self._latest is not None
            and checkpoint is not None
            and checkpoint.best_model_path
            and score is not None
        ):
            best = (checkpoint.best_model_path, float(score))
            if best != self.best:
                self.best = best
                self.probs, self.labels = self._latest
        self._latest = None


class SeedEachEpoch(Callback):
    """Reseed from (seed, epoch) as each epoch starts, so a run resumed at an epoch boundary shuffles and
    augments exactly as the uninterrupted run (bit-exact with data.num_workers=0).

    Lightning creates the train iterator before this hook on a fresh or resumed start and after it on
    later epochs; giving the loader and its sampler their own generators keeps that draw off the global
    RNG the transforms use, so both orders give the same batches.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_seed = self.seed + trainer.current_epoch
        L.seed_everything(epoch_seed, workers=True, verbose=False)
        loader = trainer.train_dataloader
        if isinstance(loader, DataLoader):
            loader.generator = torch.Generator().manual_seed(epoch_seed)
            sampler = loader.batch_sampler.sampler if loader.batch_sampler is not None else loader.sampler
            if isinstance(sampler, RandomSampler):
                sampler.generator = torch.Generator().manual_seed(epoch_seed)


class TrainThroughput(L.Callback):
    """Training images per second, timed from the end of batch `skip` to the end of each epoch's last.

    Lightning's ThroughputMonitor logs windowed rates per device; this keeps the one steady-state
    figure that runs and benchmarks are compared by (loader start-up and warm-up batches excluded).
    """

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self.images = 0
        self.seconds = 0.0
        self._epoch_images = self._pending = 0
        self._start = self._last = 0.0
        self._world, self._cuda = 1, False

    @property
    def images_per_second(self) -> float | None:
        """The steady-state figure; None when no epoch had more than `skip` batches."""
        return self.images / self.seconds if self.seconds > 0 else None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_images = self._pending = 0
        self._world, self._cuda = trainer.world_size, pl_module.device.type == "cuda"

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        done = batch_idx + 1
        if done < self.skip:
            return
        if done > self.skip:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            self._pending += len(images) * self._world
        if self._cuda:
            # timed at batch `skip` and the epoch's last only: a sync every step would stall the GPU's queue
            total = trainer.num_training_batches
            if done != self.skip and done < total and not math.isinf(total):
                return
            torch.cuda.synchronize(pl_module.device)
        self._last = time.perf_counter()
        if done == self.skip:
            self._start = self._last
        self._epoch_images += self._pending
        self._pending = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._epoch_images and self._last > self._start:
            seconds = self._last - self._start
            self.images += self._epoch_images
            self.seconds += seconds
            pl_module.log("train/images_per_second", self._epoch_images / seconds, rank_zero_only=True)


class LoaderPosition(Callback):
    """Tell a resumable training loader (lightcls.data.shards.ShardLoader) how many of the epoch's batches
    have been trained, the position a checkpoint saves: the loader itself runs ahead by its prefetch."""

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, ShardLoader):
            loader.completed = batch_idx + 1


class FitResults(Callback):
    """Put the fit's outcome (epochs, steps, best score, throughput) into `trainer.callback_metrics`.

    callback_metrics is what Lightning hands back from `ddp_spawn` workers (the sweep-safe DDP), so the
    train task reads its results from there in every mode. A spawned rank also releases its gloo process
    group at teardown: Lightning destroys only NCCL groups, and a live gloo group aborts the worker's exit.
    """

    PREFIX = "fit/"

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        facts: dict[str, float | torch.Tensor | None] = {
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "best_score": getattr(trainer.checkpoint_callback, "best_model_score", None),
            "images_per_second": next(
                (c.images_per_second for c in trainer.callbacks if isinstance(c, TrainThroughput)), None
            ),
        }
        trainer.callback_metrics.update(
            {
                self.PREFIX + k: torch.as_tensor(v, dtype=torch.float64)
                for k, v in facts.items()
                if v is not None
            }
        )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        spawned = getattr(trainer.strategy, "_start_method", "popen") != "popen"
        if spawned and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, counting epochs from 1 as the logs, metrics.json and checkpoints do,
    and moved on at most every `interval` seconds (and at an epoch's last batch): its update and metrics
    cost ~0.3-0.5 ms a batch, a few percent of a small model's step."""

    def __init__(self, *args: Any, interval: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interval, self._moved = interval, 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        if now - self._moved < self.interval and batch_idx + 1 < self.total_train_batches:
            return
        self._moved = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        return f"{description:{len(self.validation_description)}}"
