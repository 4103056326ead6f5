"""Torchvision's standard classification data sets by name (data=cifar10, mnist, svhn, ...): each read in its
official format by torchvision.datasets from `root` (the folder holding `cifar-10-batches-py/`, `MNIST/`,
...), downloaded there when asked, and written once as a split folder (lightcls.data.materialize): the
official train and test splits, a val split seeded from train, the data set's own class names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightcls.data.materialize import SplitFolderWriter, WrittenDataModule, check_written, written_folder
from lightcls.errors import LightclsError, one_line


def _cifar(klass: Any) -> list[str]:
    names = [name for name, _ in klass.train_list + klass.test_list] + [klass.meta["filename"]]
    return [f"{klass.base_folder}/{name}" for name in names]


def _mnist(klass: Any) -> list[str]:
    return [f"{klass.__name__}/raw/{Path(url).stem}" for url, _ in klass.resources]


def _qmnist(klass: Any) -> list[str]:
    return [
        f"QMNIST/raw/{Path(url).stem}" for split in ("train", "test") for url, _ in klass.resources[split]
    ]


def _svhn(klass: Any) -> list[str]:
    return [klass.split_list[split][1] for split in ("train", "test")]


def _stl10(klass: Any) -> list[str]:
    names = [name for name, _ in klass.train_list + klass.test_list] + [klass.class_names_file]
    return [f"{klass.base_folder}/{name}" for name in names]


@dataclass(frozen=True)
class Standard:
    """A data set torchvision reads: its class, the files it needs (relative to `root`, from the class's
    own lists), the arguments choosing each official split, where to get it, names it lacks."""

    klass: str
    files: Callable[[Any], list[str]]
    train: dict[str, Any]
    test: dict[str, Any]
    home: str
    classes: Sequence[str] = field(default_factory=tuple)


_TRAIN, _TEST = {"train": True}, {"train": False}
#: the data sets `data.dataset` names (conf/data/<name>.yaml)
STANDARD = {
    "cifar10": Standard("CIFAR10", _cifar, _TRAIN, _TEST, "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cifar100": Standard("CIFAR100", _cifar, _TRAIN, _TEST, "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "mnist": Standard("MNIST", _mnist, _TRAIN, _TEST, "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": Standard(
        "FashionMNIST", _mnist, _TRAIN, _TEST, "https://github.com/zalandoresearch/fashion-mnist"
    ),
    "kmnist": Standard("KMNIST", _mnist, _TRAIN, _TEST, "https://github.com/rois-codh/kmnist"),
    "qmnist": Standard(
        "QMNIST", _qmnist, {"what": "train"}, {"what": "test"}, "https://github.com/facebookresearch/qmnist"
    ),
    "svhn": Standard(
        "SVHN",
        _svhn,
        {"split": "train"},
        {"split": "test"},
        "http://ufldl.stanford.edu/housenumbers/ (format 2: train_32x32.mat, test_32x32.mat)",
        tuple("0123456789"),
    ),
    "stl10": Standard(
        "STL10", _stl10, {"split": "train"}, {"split": "test"}, "https://cs.stanford.edu/~acoates/stl10/"
    ),
}


def torchvision_class(dataset: str) -> Any:
    """torchvision.datasets' class of `dataset`."""
    import torchvision.datasets

    return getattr(torchvision.datasets, STANDARD[dataset].klass)


def missing_files(dataset: str, root: Path) -> list[str]:
    """The files torchvision reads for `dataset` that are not under `root`."""
    return [
        name for name in STANDARD[dataset].files(torchvision_class(dataset)) if not (root / name).is_file()
    ]


class TorchvisionDataModule(WrittenDataModule):
    """A torchvision data set by name, read from `root` in its official format and trained on as the split
    folder written from it once (`folder`, default `<root>/lightcls/<dataset>`).

    Its own arguments, after the split folder's (lightcls.data.SplitFolderDataModule; `val_fraction` and
    `split_seed` seed the val split from the official training split):

    Args:
        root: torchvision's `root`: the folder holding `cifar-10-batches-py/`, `MNIST/`, ... (or the
            written split folder itself, as a checkpoint records it).
        dataset: one of STANDARD (cifar10, cifar100, mnist, fashion_mnist, kmnist, qmnist, svhn, stl10).
        download: let torchvision download the files missing from `root` (a machine with internet).
        folder: where the split folder is written (default `<root>/lightcls/<dataset>`).
    """

    def __init__(
        self,
        root: str,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        dataset: str = "cifar10",
        download: bool = False,
        folder: str | None = None,
        **kwargs: Any,
    ) -> None:
        if dataset not in STANDARD:
            raise LightclsError(f"data.dataset={dataset}: choose one of {', '.join(STANDARD)}")
        if not isinstance(download, bool):
            raise LightclsError(f"data.download must be true or false, got {download!r}")
        self.dataset, self.download = dataset, download
        self.source = {"torchvision": STANDARD[dataset].klass}
        self.source_root = Path(root).expanduser()
        target = written_folder(self.source_root, folder, f"lightcls/{dataset}", self.source)
        super().__init__(str(target), image_size, channels, mean, std, **kwargs)
        self.settings = {"val_fraction": self.val_fraction, "split_seed": self.split_seed}
        if not check_written(self.root, self.source, self.settings) and not download:
            self._check_files()

    def _check_files(self) -> None:
        """One line naming the files missing from `root` and how to get them."""
        missing = missing_files(self.dataset, self.source_root)
        if not missing:
            return
        shown = ", ".join(missing[:2]) + (f" and {len(missing) - 2} more" if len(missing) > 2 else "")
        raise LightclsError(
            f"data.root={self.source_root}: {self.dataset} is not there (missing {shown}); set "
            f"data.download=true (on a machine with internet), or put its files there from "
            f"{STANDARD[self.dataset].home}"
        )

    def write(self, writer: SplitFolderWriter) -> list[str]:
        """Every image of the official train and test splits, as torchvision reads them."""
        spec = STANDARD[self.dataset]
        classes: list[str] = []
        for split, arguments in (("train", spec.train), ("test", spec.test)):
            found = self._read(arguments)
            classes = classes or list(getattr(found, "classes", None) or spec.classes)
            width = max(5, len(str(len(found) - 1)))
            for i in range(len(found)):
                image, label = found[i]
                writer.add(split, f"{i:0{width}d}", classes[label], image)
        return classes

    def _read(self, arguments: dict[str, Any]) -> Any:
        """torchvision's dataset of one split (downloaded first with `download`)."""
        try:
            return torchvision_class(self.dataset)(str(self.source_root), download=self.download, **arguments)
        except Exception as err:  # noqa: BLE001  (a failed checksum or download, a truncated file: one line)
            verb = "download or read" if self.download else "read"
            raise LightclsError(
                f"data.root={self.source_root}: torchvision cannot {verb} {self.dataset} there "
                f"({one_line(str(err))}); get its files from {STANDARD[self.dataset].home} (one failing its "
                "checksum is damaged or not the official file)"
            ) from None
