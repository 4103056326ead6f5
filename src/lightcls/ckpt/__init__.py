"""Checkpoints: safe reading (never unpickling code), atomic writing, and what they must hold."""

from lightcls.ckpt.load import (
    DATA_KEY,
    DIGEST_KEY,
    best_of_sweep,
    check_resume,
    data_provenance,
    describe,
    load_checkpoint,
    model_file,
    read_checkpoint,
    seal,
    weights_digest,
)

__all__ = [
    "DATA_KEY",
    "DIGEST_KEY",
    "best_of_sweep",
    "check_resume",
    "data_provenance",
    "describe",
    "load_checkpoint",
    "model_file",
    "read_checkpoint",
    "seal",
    "weights_digest",
]
