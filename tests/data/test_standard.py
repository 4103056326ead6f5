"""Torchvision's standard data sets by name: their official formats written here (CIFAR-10's python pickle
batches, MNIST's idx files), read by torchvision.datasets, trained on and evaluated from the checkpoint alone.

The official CIFAR, SVHN and STL-10 files are checked against their md5 by torchvision before it reads them,
which files written here cannot match: those tests replace torchvision's `check_integrity` with a file-exists
check (`no_md5`); everything else, the reading of the format included, is torchvision's own code. MNIST's
readers check no md5.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.cifar
import torchvision.datasets.stl10
import torchvision.datasets.svhn
from hydra.utils import instantiate
from PIL import Image

from helpers import TINY, compose_task, compose_train, one_line_error, quoted
from lightcls.config.checks import check_command
from lightcls.data import SplitFolderDataModule, TorchvisionDataModule
from lightcls.data.materialize import RECORD
from lightcls.data.standard import STANDARD, torchvision_class
from lightcls.tasks import evaluate, train
from lightcls.workflows.checks import check_train

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: tiny sets: images per class in the official train and test splits
TRAIN_PER_CLASS, TEST_PER_CLASS = 6, 2
RUN = [TINY, "trainer=cpu", "data.num_workers=0", "data.batch_size=8"]


def _images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, list[int]]:
    """`n` random uint8 images per class of 10, each class a different brightness; and their labels."""
    rng = np.random.default_rng(seed)
    labels = [label for label in range(10) for _ in range(n)]
    images = np.stack([rng.integers(0, 40, shape) + 20 * label for label in labels]).astype(np.uint8)
    return images, labels


def write_cifar10(root: Path) -> Path:
    """CIFAR-10's python version at `root`/cifar-10-batches-py: five training batches, the test batch and
    batches.meta, pickled dicts as the official files hold them (rows of 3072 bytes, channel-major)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels = _images(TRAIN_PER_CLASS, (3, 32, 32), 0)
    rows = images.reshape(len(images), -1)
    for b, part in enumerate(np.array_split(np.arange(len(rows)), 5), start=1):
        batch = {
            "batch_label": f"training batch {b} of 5",
            "labels": [labels[i] for i in part],
            "data": rows[part],
        }
        (folder / f"data_batch_{b}").write_bytes(pickle.dumps(batch, protocol=2))
    test, test_labels = _images(TEST_PER_CLASS, (3, 32, 32), 1)
    batch = {
        "batch_label": "testing batch 1 of 1",
        "labels": test_labels,
        "data": test.reshape(len(test), -1),
    }
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": CIFAR_CLASSES, "num_cases_per_batch": 10000, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def _idx(path: Path, array: np.ndarray) -> None:
    """One idx file: magic (0, 0, 0x08 = unsigned byte, the number of dimensions), big-endian sizes, bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, name: str = "MNIST") -> Path:
    """MNIST's four idx files at `root`/MNIST/raw (or another of its kin's folder), unpacked as torchvision
    reads them."""
    folder = root / name / "raw"
    folder.mkdir(parents=True)
    for prefix, n, seed in (("train", TRAIN_PER_CLASS, 0), ("t10k", TEST_PER_CLASS, 1)):
        images, labels = _images(n, (28, 28), seed)
        _idx(folder / f"{prefix}-images-idx3-ubyte", images)
        _idx(folder / f"{prefix}-labels-idx1-ubyte", np.array(labels))
    return root


def write_svhn(root: Path) -> Path:
    """SVHN's format 2: train_32x32.mat and test_32x32.mat, X as (32, 32, 3, N) and y in 1..10 (10: a 0)."""
    import scipy.io

    root.mkdir(parents=True)
    for name, n, seed in (("train", TRAIN_PER_CLASS, 0), ("test", TEST_PER_CLASS, 1)):
        images, labels = _images(n, (32, 32, 3), seed)
        y = np.array([[label or 10] for label in labels], dtype=np.uint8)
        scipy.io.savemat(root / f"{name}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y})
    return root


def write_stl10(root: Path) -> Path:
    """STL-10's binary files in `root`/stl10_binary: images column-major, labels 1..10, the class names (and
    an empty unlabeled_X.bin: torchvision checks that it is there)."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    for name, n, seed in (("train", TRAIN_PER_CLASS, 0), ("test", TEST_PER_CLASS, 1)):
        images, labels = _images(n, (3, 96, 96), seed)
        (folder / f"{name}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        (folder / f"{name}_y.bin").write_bytes(bytes(label + 1 for label in labels))
    (folder / "unlabeled_X.bin").write_bytes(b"")
    (folder / "class_names.txt").write_text("\n".join(CIFAR_CLASSES) + "\n")
    return root


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's CIFAR, SVHN and STL-10 readers with their md5 check reduced to "the file exists" (see
    the module's doc)."""

    def exists(path: str, md5: str | None = None) -> bool:
        return os.path.isfile(path)

    for module in (torchvision.datasets.cifar, torchvision.datasets.svhn, torchvision.datasets.stl10):
        monkeypatch.setattr(module, "check_integrity", exists)


def _run(name: str, root: Path, run_dir: Path, *extra: str) -> dict:
    train(compose_train([f"data={name}", f"data.root={quoted(root)}", *RUN, *extra], run_dir))
    return json.loads((run_dir / "metrics.json").read_text())


def _val_lines(folder: Path) -> list[str]:
    return sorted((folder / "val.txt").read_text().splitlines())


def test_cifar10_trains_on_its_python_batches_and_a_checkpoint_evaluates_alone(
    tmp_path: Path, no_md5: None
) -> None:
    root = write_cifar10(tmp_path / "data")
    metrics = _run("cifar10", root, tmp_path / "run")
    folder = root / "lightcls" / "cifar10"
    assert metrics["classes"] == CIFAR_CLASSES and metrics["data"] == str(folder.resolve())
    record = json.loads((folder / RECORD).read_text())
    # the official test split is the test split; val is 10% of each class of train (1 of 6), written down
    assert record["counts"] == {"train": 50, "val": 10, "test": 20}
    assert metrics["test_images"] == 20 and len(_val_lines(folder)) == 10
    assert (folder / "classes.txt").read_text().split("\n")[:2] == ["airplane", "automobile"]
    assert sorted(p.name for p in (folder / "test_set" / "cat").iterdir()) == ["00006.png", "00007.png"]

    alone = tmp_path / "elsewhere" / "model.ckpt"
    alone.parent.mkdir()
    alone.write_bytes((tmp_path / "run" / metrics["best_ckpt"]).read_bytes())
    report = evaluate(compose_task("eval", [f"ckpt_path={quoted(alone)}"], tmp_path / "eval"))
    assert report["num_images"] == 20 and report["top1"] == pytest.approx(metrics["test_top1"], abs=1e-6)
    rows = list(csv.DictReader((tmp_path / "eval" / "predictions.csv").open()))
    assert rows[0]["file"].startswith("test_set/") and rows[0]["true_class"] in CIFAR_CLASSES

    again = evaluate(
        compose_task(
            "eval",
            [
                f"ckpt_path={quoted(alone)}",
                "data=cifar10",
                f"data.root={root}",  # the data group's num_workers=auto is eval's too
                "gallery=0",
            ],
            tmp_path / "eval2",
        )
    )
    assert again["top1"] == report["top1"]


def test_mnist_trains_on_its_idx_files_and_the_val_split_is_the_same_next_time(tmp_path: Path) -> None:
    root = write_mnist(tmp_path / "data")
    metrics = _run("mnist", root, tmp_path / "run")
    folder = root / "lightcls" / "mnist"
    assert metrics["classes"][:2] == ["0 - zero", "1 - one"] and metrics["test_images"] == 20
    first = _val_lines(folder)
    assert len(first) == 10 and first[0].startswith("0 - zero/")
    ckpt = quoted(tmp_path / "run" / metrics["last_ckpt"])
    report = evaluate(compose_task("eval", [f"ckpt_path={ckpt}", "gallery=0"], tmp_path / "eval"))
    assert report["num_images"] == 20

    stamp = (folder / "classes.txt").stat().st_mtime_ns
    _run("mnist", root, tmp_path / "again")  # reads the folder written by the first run, as it is
    assert _val_lines(folder) == first and (folder / "classes.txt").stat().st_mtime_ns == stamp

    saved = dict(instantiate(compose_train(["data=mnist", f"data.root={root}"]).data).hparams)
    for kind in (SplitFolderDataModule, TorchvisionDataModule):  # a checkpoint's saved settings: that folder
        assert kind.from_provenance(saved).root == folder

    def copy(folder: Path, seed: int) -> list[str]:
        split = {"val_fraction": 0.1, "split_seed": seed}
        assert TorchvisionDataModule(
            str(root), 28, 1, [0.5], [0.5], "mnist", folder=str(folder), **split
        ).layout
        return _val_lines(folder)

    assert copy(tmp_path / "seed0", 0) == first and copy(tmp_path / "seed1", 1) != first  # seeded


@pytest.mark.parametrize(
    ("dataset", "write", "classes"),
    [
        ("fashion_mnist", lambda root: write_mnist(root, "FashionMNIST"), ["T-shirt_top", "Trouser"]),
        ("svhn", write_svhn, ["0", "1"]),
        ("stl10", write_stl10, CIFAR_CLASSES[:2]),
    ],
)
def test_other_sets_are_read_in_their_formats(
    tmp_path: Path, no_md5: None, dataset: str, write, classes
) -> None:
    root = write(tmp_path / "data")
    cfg = compose_train([f"data={dataset}", f"data.root={root}"])
    layout = instantiate(cfg.data).layout
    assert layout.classes[:2] == classes and len(layout.splits["test"]) == 20
    assert [len(layout.splits[s]) for s in ("train", "val")] == [50, 10]
    first = layout.splits["train"][0][0]
    with Image.open(first) as image:
        assert image.size == (cfg.data.image_size,) * 2 and len(image.getbands()) == cfg.data.channels


#: the files torchvision reads for each set, by its own lists (the first, and how many)
FILES = {
    "cifar10": ("cifar-10-batches-py/data_batch_1", 7),
    "cifar100": ("cifar-100-python/train", 3),
    "fashion_mnist": ("FashionMNIST/raw/train-images-idx3-ubyte", 4),
    "kmnist": ("KMNIST/raw/train-images-idx3-ubyte", 4),
    "mnist": ("MNIST/raw/train-images-idx3-ubyte", 4),
    "qmnist": ("QMNIST/raw/qmnist-train-images-idx3-ubyte", 4),
    "stl10": ("stl10_binary/train_X.bin", 6),
    "svhn": ("train_32x32.mat", 2),
}


@pytest.mark.parametrize("dataset", sorted(STANDARD))
def test_each_set_composes_and_names_its_missing_files(tmp_path: Path, dataset: str) -> None:
    files = STANDARD[dataset].files(torchvision_class(dataset))
    assert (files[0], len(files)) == FILES[dataset]
    message = one_line_error(check_train, compose_train([f"data={dataset}", f"data.root={tmp_path}"]))
    assert message.startswith(f"data.root={tmp_path}: {dataset} is not there (missing {files[0]}, {files[1]}")


def test_a_missing_download_and_bad_values_are_one_line_before_any_run(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    message = one_line_error(check_train, compose_train(["data=cifar10", f"data.root={empty}"]))
    assert message == (
        f"data.root={empty}: cifar10 is not there (missing cifar-10-batches-py/data_batch_1, "
        "cifar-10-batches-py/data_batch_2 and 5 more); set data.download=true (on a machine with internet), "
        "or put its files there from https://www.cs.toronto.edu/~kriz/cifar.html"
    )
    message = one_line_error(check_command, "train", ["data=mnist", f"data.root={empty}"], check_train)
    assert message.startswith(
        f"data.root={empty}: mnist is not there (missing MNIST/raw/train-images-idx3-ubyte"
    )
    wrong = ["data=mnist", "data.dataset=mnist2"]
    assert one_line_error(check_command, "train", wrong, check_train) == (
        "data.dataset=mnist2: choose one of cifar10, cifar100, mnist, fashion_mnist, kmnist, qmnist, svhn, "
        "stl10"
    )
    assert one_line_error(check_command, "train", ["data=mnist", "data.download=maybe"], check_train) == (
        "data.download must be true or false, got 'maybe'"
    )
    assert one_line_error(check_command, "train", ["data=cifar11"], check_train).startswith(
        "unknown data 'cifar11' (did you mean cifar10?); choose one of: cifar10, cifar100, digits, "
    )


def test_files_failing_their_md5_are_one_line_and_a_changed_split_is_refused(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "data")  # the right files, but not the official bytes
    dm = TorchvisionDataModule(str(root), 32, 3, [0.5] * 3, [0.5] * 3, dataset="cifar10")
    assert one_line_error(lambda: dm.layout) == (
        f"data.root={root}: torchvision cannot read cifar10 there (Dataset not found or corrupted. You can "
        "use download=True to download it); get its files from https://www.cs.toronto.edu/~kriz/cifar.html "
        "(one failing its checksum is damaged or not the official file)"
    )
    mnist = write_mnist(tmp_path / "mnist")
    test_images = mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    whole = test_images.read_bytes()
    test_images.write_bytes(
        whole[:1000]
    )  # a partial download: the training split is written, then this fails
    message = one_line_error(lambda: TorchvisionDataModule(str(mnist), 28, 1, [0.5], [0.5], "mnist").layout)
    assert message.startswith(f"data.root={mnist}: torchvision cannot read mnist there (")
    assert not any((mnist / "lightcls").iterdir())  # nothing half-written left behind

    test_images.write_bytes(whole)
    assert TorchvisionDataModule(str(mnist), 28, 1, [0.5], [0.5], dataset="mnist").layout
    folder = mnist / "lightcls" / "mnist"
    assert one_line_error(
        TorchvisionDataModule, str(mnist), 28, 1, [0.5], [0.5], dataset="mnist", val_fraction=0.3
    ) == (
        f"data.val_fraction=0.3: {folder} was written with data.val_fraction=0.15 ({RECORD}); pass those, or "
        "write another copy with data.folder=NEW_FOLDER (or remove that one)"
    )
