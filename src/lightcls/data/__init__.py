"""Data: the split-folder layout, decoding, the preprocessing contract, caching, checks, shards and the
DataModules of each data source, on one shared base."""

from lightcls.data.base import ImageDataModule
from lightcls.data.datamodule import SplitFolderDataModule
from lightcls.data.hf import HFDataModule
from lightcls.data.layout import Layout, read_layout
from lightcls.data.preprocess import Preprocess
from lightcls.data.standard import TorchvisionDataModule
from lightcls.data.streaming import StreamingDataModule

__all__ = [
    "HFDataModule",
    "ImageDataModule",
    "Layout",
    "Preprocess",
    "SplitFolderDataModule",
    "StreamingDataModule",
    "TorchvisionDataModule",
    "read_layout",
]
