"""The per-epoch record of a run: one readable line in the log and one row of `metrics.csv`.

Hand-written because Lightning's CSVLogger writes one row per logging step (the lr of epoch N lands in the
row of epoch N-1's last step), where a person and a script want one row per epoch with fixed columns.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

from lightcls.config import started_at

log = logging.getLogger("lightcls.train")

COLUMNS = (
    "epoch",
    "train_loss",
    "train_top1",
    "lr",
    "val_loss",
    "val_top1",
    "val_top5",
    "epoch_seconds",
    "data_seconds",
    "images_per_second",
    "gpu_peak_mb",
    "elapsed_seconds",
)
#: a multi-label run's columns: its training F1 (micro, at the thresholds), val mAP and F1s in top-k's place
MULTILABEL_COLUMNS = tuple(
    c
    for name in COLUMNS
    for c in {
        "train_top1": ("train_f1",),
        "val_top1": ("val_map",),
        "val_top5": ("val_f1_micro", "val_f1_macro"),
    }.get(name, (name,))
)


class EpochRecorder:
    """Times each epoch (all of it, and the part spent waiting for data) and writes its record."""

    def __init__(self) -> None:
        self._start = self._batch_end = 0.0
        self.data_seconds = 0.0
        self.images = 0

    def epoch_start(self) -> None:
        self._start = self._batch_end = time.perf_counter()
        self.data_seconds = 0.0
        self.images = 0

    def batch_start(self, images: int) -> None:
        self.data_seconds += time.perf_counter() - self._batch_end
        self.images += images

    def batch_end(self) -> None:
        self._batch_end = time.perf_counter()

    def write(
        self,
        values: dict[str, float | int | None],
        max_epochs: int,
        csv_path: Path | None,
        task: str = "multiclass",
    ) -> None:
        """Log `[Epoch e/N] ...` (1-based) and append the row to `csv_path` (header on a new file)."""
        seconds = time.perf_counter() - self._start
        row = {
            **values,
            "epoch_seconds": round(seconds, 3),
            "data_seconds": round(self.data_seconds, 3),
            "images_per_second": round(self.images / seconds, 1) if seconds > 0 else None,
            # since the command's process started (imports included): time to an accuracy, off one column
            "elapsed_seconds": round(time.time() - started_at(), 2),
        }
        log.info(line(row, max_epochs))
        if csv_path is None:
            return
        columns = MULTILABEL_COLUMNS if task == "multilabel" else COLUMNS
        new = not csv_path.is_file()
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})


def line(row: dict[str, float | int | None], max_epochs: int) -> str:
    """`[Epoch 3/20] train loss .. top1 .. lr .. time ..s data ..s | val loss .. top1 .. top5 ..` (a
    multi-label run: train f1, val map, f1_micro, f1_macro)."""

    def fmt(key: str, digits: int = 4) -> str:
        value = row.get(key)
        return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    train = "f1" if "train_f1" in row else "top1"
    text = (
        f"[Epoch {row['epoch']}/{max_epochs}] train loss {fmt('train_loss')} {train} {fmt('train_' + train)} "
        f"lr {fmt('lr', 3)} time {fmt('epoch_seconds', 3)}s data {fmt('data_seconds', 2)}s"
    )
    if row.get("gpu_peak_mb") is not None:
        text += f" mem {row['gpu_peak_mb']:.0f}MB"
    shown = [k for k in ("top1", "top5", "map", "f1_micro", "f1_macro") if row.get(f"val_{k}") is not None]
    if shown:
        text += f" | val loss {fmt('val_loss')} " + " ".join(f"{k} {fmt('val_' + k)}" for k in shown)
    return text
