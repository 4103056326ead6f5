"""Data: the split-folder layout, decoding, the preprocessing contract, caching, checks, shards and the
DataModules of each data source, on one shared base."""

from lightcls.data.base import ImageDataModule
from lightcls.data.datamodule import SplitFolderDataModule
from lightcls.data.layout import Layout, read_layout
from lightcls.data.preprocess import Preprocess
from lightcls.data.streaming import StreamingDataModule

__all__ = [
    "ImageDataModule",
    "Layout",
    "Preprocess",
    "SplitFolderDataModule",
    "StreamingDataModule",
    "read_layout",
]
