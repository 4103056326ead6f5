"""Interruption loses nothing: SIGTERM mid-epoch saves a resumable checkpoint; a kill during a save
leaves the previous checkpoint whole."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from helpers import REPO, compose_train, quoted
from lightcls.tasks import train

STEPS_PER_EPOCH = 79  # 1257 training digits in batches of 16


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_and_resume_continues(digits_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        f"data.root={digits_root}",
        "trainer=cpu",
        "data.batch_size=16",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=5",
        "+logger.csv._target_=lightning.pytorch.loggers.CSVLogger",
        f"+logger.csv.save_dir={run}",
        "+logger.csv.flush_logs_every_n_steps=20",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args, f"hydra.run.dir={run}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(run.glob("lightning_logs/*/metrics.csv")):  # training has begun
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it was interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    last = run / "checkpoints" / "last.ckpt"

    assert proc.returncode == 143
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: SIGTERM: saved {last}; resume with ckpt_path={last}"
    )
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0
    assert 0 < saved["global_step"] < STEPS_PER_EPOCH, "saved mid-epoch, after the batch in progress"
    assert not (run / "metrics.json").exists()

    train(compose_train([*args, f"ckpt_path={quoted(last)}"], run))  # in the run dir the command gives it
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1
    assert metrics["global_step"] == STEPS_PER_EPOCH
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (0, STEPS_PER_EPOCH)
    with (run / "metrics.csv").open() as f:
        (row,) = list(csv.DictReader(f))  # the resumed epoch's record: its own lr and the resumed part's time
    assert row["epoch"] == "1" and float(row["lr"]) == pytest.approx(0.05)
    assert 0 < float(row["epoch_seconds"]) <= float(row["elapsed_seconds"])


def _write_big(path: Path) -> None:
    """Save a 256 MiB checkpoint at `path` (in a process of its own, to be killed mid-write)."""
    from lightcls.ckpt.io import AtomicCheckpointIO

    torch.set_num_threads(1)  # a forked child must not enter the OpenMP pool of its parent: it hangs there
    state = {"state_dict": {"w": torch.full((64, 1024, 1024), 2.0)}, "global_step": 2}
    AtomicCheckpointIO().save_checkpoint(state, path)


@pytest.mark.slow
def test_kill_during_save_leaves_previous_checkpoint(tmp_path: Path) -> None:
    from lightcls.ckpt.io import AtomicCheckpointIO, remove_partial_saves

    last = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, last)
    before = last.read_bytes()
    proc = multiprocessing.get_context("fork").Process(
        target=_write_big, args=(last,)
    )  # no imports to wait on
    proc.start()
    deadline = time.monotonic() + 60
    while not list(last.parent.glob("last.ckpt.tmp-*")):
        assert proc.is_alive() and time.monotonic() < deadline, "the save ended before the kill"
        time.sleep(0.001)
    while list(last.parent.glob("last.ckpt.tmp-*"))[0].stat().st_size == 0:
        time.sleep(0.001)
    proc.kill()  # SIGKILL while the new checkpoint is half written
    proc.join()

    assert proc.exitcode == -signal.SIGKILL
    assert last.read_bytes() == before
    assert list(last.parent.glob("last.ckpt.tmp-*"))
    remove_partial_saves(last.parent)  # as the next training run starts
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
    loaded = torch.load(last, map_location="cpu", weights_only=True)
    assert loaded["global_step"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.ones(3))


class _ScoredByEpoch(L.LightningModule):
    """Validation logits that are right at epoch 0, wrong at 1, half right at 2: the best is epoch 0."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=-1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return (self.weight**2).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        y = batch[1]
        right = torch.nn.functional.one_hot(y, 2).float() * 5
        logits = [right, right.flip(-1), torch.cat([right[:2], right.flip(-1)[2:]])][self.current_epoch]
        self.log("val/top1", (logits.argmax(-1) == y).float().mean())
        return logits

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_report_keeps_the_val_predictions_of_the_best_checkpoint(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from lightcls.training.callbacks import BestValPredictions

    data = DataLoader(TensorDataset(torch.zeros(4, 1), torch.tensor([0, 1, 0, 1])), batch_size=4)
    kept, checkpoint = BestValPredictions(), ModelCheckpoint(tmp_path, monitor="val/top1", mode="max")
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[kept, checkpoint],
        logger=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(_ScoredByEpoch(), train_dataloaders=data, val_dataloaders=data)
    assert "epoch=0" in checkpoint.best_model_path and kept.of(checkpoint.best_model_path)
    probs, labels = kept.tensors()
    assert probs.argmax(-1).tolist() == labels.tolist() == [0, 1, 0, 1]  # epoch 0's, all right


@pytest.mark.parametrize("every", [0, 2])
def test_epoch_checkpoint_saves_within_an_epoch_only_when_asked(tmp_path: Path, every: int) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from lightcls.training.callbacks import EpochCheckpoint

    data = DataLoader(TensorDataset(torch.zeros(5, 1), torch.zeros(5, dtype=torch.long)), batch_size=1)
    checkpoint = EpochCheckpoint(
        dirpath=tmp_path, filename="{step}", save_top_k=-1, every_n_train_steps=every, save_last=True
    )
    trainer = L.Trainer(max_epochs=1, callbacks=[checkpoint], logger=False, enable_progress_bar=False)
    trainer.fit(_ScoredByEpoch(), train_dataloaders=data)
    saved = sorted(p.name for p in tmp_path.iterdir())
    within = ["step=2.ckpt", "step=4.ckpt"] if every else []
    assert saved == ["last.ckpt", *within]


def test_the_checkpoints_state_key_follows_what_it_monitors() -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightcls.training.callbacks import EpochCheckpoint

    ours, theirs = (
        EpochCheckpoint(monitor="val/top1", mode="max"),
        ModelCheckpoint(monitor="val/top1", mode="max"),
    )
    assert ours.state_key == theirs.state_key.replace("ModelCheckpoint", "EpochCheckpoint")
    ours.monitor = theirs.monitor = "val/map"  # as multi-label data sets it, after the callback is built
    assert ours.state_key == theirs.state_key.replace("ModelCheckpoint", "EpochCheckpoint")


@pytest.mark.parametrize(("interval", "shown"), [(0.0, [1, 2, 3, 4, 5] * 2), (3600.0, [1, 5, 5])])
def test_the_progress_bar_moves_at_most_every_interval_and_ends_each_epoch_full(
    monkeypatch, interval: float, shown: list[int]
) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from lightcls.training.callbacks import ProgressBar

    moved: list[int] = []
    update = ProgressBar._update

    def counted(self, bar_id, current: int, *args, **kwargs) -> None:
        if bar_id is not None and bar_id == self.train_progress_bar_id:
            moved.append(current)
        update(self, bar_id, current, *args, **kwargs)

    monkeypatch.setattr(ProgressBar, "_update", counted)
    data = DataLoader(TensorDataset(torch.zeros(5, 1), torch.zeros(5, dtype=torch.long)), batch_size=1)
    bar = ProgressBar(interval=interval)
    trainer = L.Trainer(max_epochs=2, callbacks=[bar], logger=False, enable_checkpointing=False)
    trainer.fit(_ScoredByEpoch(), train_dataloaders=data)
    assert moved == shown  # an hour apart: the first batch (nothing shown yet), then each epoch's last
