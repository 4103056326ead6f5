"""Data: the split-folder layout, image decoding, transforms and the LightningDataModule."""

from lightcls.data.datamodule import SplitFolderDataModule
from lightcls.data.layout import Layout, read_layout

__all__ = ["Layout", "SplitFolderDataModule", "read_layout"]
