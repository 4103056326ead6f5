"""Data: the split-folder layout, decoding, the preprocessing contract, caching, checks and the DataModule."""

from lightcls.data.datamodule import SplitFolderDataModule
from lightcls.data.layout import Layout, read_layout
from lightcls.data.preprocess import Preprocess

__all__ = ["Layout", "Preprocess", "SplitFolderDataModule", "read_layout"]
