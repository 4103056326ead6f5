"""Data: the split-folder layout, decoding, the preprocessing contract, caching, checks, shards and the
DataModules."""

from lightcls.data.datamodule import SplitFolderDataModule
from lightcls.data.layout import Layout, read_layout
from lightcls.data.preprocess import Preprocess
from lightcls.data.streaming import StreamingDataModule

__all__ = ["Layout", "Preprocess", "SplitFolderDataModule", "StreamingDataModule", "read_layout"]
