"""Checkpoints: safe reading (never unpickling code), atomic writing, and what they must hold."""

from lightcls.ckpt.load import (
    DATA_KEY,
    best_of_sweep,
    check_resume,
    data_provenance,
    describe,
    load_checkpoint,
    read_checkpoint,
)

__all__ = [
    "DATA_KEY",
    "best_of_sweep",
    "check_resume",
    "data_provenance",
    "describe",
    "load_checkpoint",
    "read_checkpoint",
]
