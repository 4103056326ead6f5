"""Hugging Face data sets: real `datasets` objects built here (Dataset.from_dict with images, save_to_disk,
parquet), trained on through data=hf, their checkpoints evaluated alone; nothing downloaded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import TINY, compose_task, compose_train, one_line_error, quoted
from lightcls.config.checks import check_command
from lightcls.data import HFDataModule
from lightcls.data.materialize import RECORD
from lightcls.tasks import evaluate, train
from lightcls.workflows.checks import check_train

datasets = pytest.importorskip("datasets")

CLASSES = ["cat", "dog", "fox"]
RUN = [TINY, "trainer=cpu", "data.num_workers=0", "data.batch_size=4", "data.image_size=16"]
CONTRACT = {"image_size": 16, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3}


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`datasets`' own cache (parquet read into Arrow) in the test's folder, not the user's."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def _png(rng: np.random.Generator, label: int) -> Image.Image:
    return Image.fromarray((rng.integers(0, 60, (12, 12, 3)) + 80 * label).astype(np.uint8))


def make_split(per_class: int, seed: int, column: str = "image") -> datasets.Dataset:
    """`per_class` distinct PNG images of each class, with a ClassLabel column naming the classes."""
    rng = np.random.default_rng(seed)
    labels = [label for label in range(len(CLASSES)) for _ in range(per_class)]
    features = datasets.Features({column: datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    return datasets.Dataset.from_dict(
        {column: [_png(rng, label) for label in labels], "label": labels}, features=features
    )


def saved_dict(root: Path) -> Path:
    """A DatasetDict with train (6 a class), validation and test (2 a class) written by save_to_disk."""
    splits = {"train": make_split(6, 0), "validation": make_split(2, 1), "test": make_split(2, 2)}
    datasets.DatasetDict(splits).save_to_disk(str(root))
    return root


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_save_to_disk_folder_trains_with_its_own_splits_and_evaluates_alone(tmp_path: Path) -> None:
    saved = saved_dict(tmp_path / "pets")
    run = [f"data.name={quoted(saved)}", f"data.root={quoted(tmp_path / 'hf')}"]
    train(compose_train(["data=hf", *run, *RUN], tmp_path / "run"))
    metrics = _metrics(tmp_path / "run")
    folder = Path(metrics["data"])
    assert metrics["classes"] == CLASSES and metrics["test_images"] == 6
    assert folder.parent == tmp_path / "hf" and folder.name.startswith("pets-")
    record = json.loads((folder / RECORD).read_text())
    assert record["counts"] == {"train": 18, "val": 6, "test": 6} and record["val"] == "the source's"
    first = sorted((folder / "training_set" / "cat").iterdir())[0]
    original = make_split(6, 0).cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]
    assert first.name == "00000000.png" and first.read_bytes() == original  # the bytes kept, not re-encoded

    report = evaluate(
        compose_task(
            "eval",
            [f"ckpt_path={quoted(tmp_path / 'run' / metrics['best_ckpt'])}", "gallery=0"],
            tmp_path / "eval",
        )
    )
    assert report["num_images"] == 6 and report["top1"] == pytest.approx(metrics["test_top1"], abs=1e-6)


def test_a_parquet_file_gets_a_seeded_val_split_written_down_and_streams_the_same(tmp_path: Path) -> None:
    parquet = tmp_path / "pets.parquet"
    make_split(6, 0, column="picture").to_parquet(str(parquet))  # ClassLabel names kept in its metadata
    train(
        compose_train(
            ["data=hf", f"data.name={parquet}", f"data.root={tmp_path / 'hf'}", *RUN], tmp_path / "run"
        )
    )
    metrics = _metrics(tmp_path / "run")
    folder = Path(metrics["data"])
    assert metrics["classes"] == CLASSES and metrics["test_images"] is None
    record = json.loads((folder / RECORD).read_text())
    assert record["counts"] == {"train": 15, "val": 3, "test": 0} and record["val"].startswith("seeded")
    assert len((folder / "val.txt").read_text().splitlines()) == 3

    streamed = HFDataModule(
        str(tmp_path), **CONTRACT, name=str(parquet), streaming=True, folder=str(tmp_path / "s")
    )
    assert isinstance(streamed.opened["train"], datasets.IterableDataset)  # read as it streams
    assert streamed.layout.classes == CLASSES
    assert (tmp_path / "s" / "val.txt").read_text() == (folder / "val.txt").read_text()


def test_jpeg_bytes_are_kept_and_string_labels_name_the_classes(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _png(np.random.default_rng(0), 1).save(buffer, "JPEG")
    features = datasets.Features({"photo": datasets.Image(), "label": datasets.Value("string")})
    rows = {"photo": [{"bytes": buffer.getvalue(), "path": None}] * 4, "label": ["10", "2", "10", "2"]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "set"))
    dm = HFDataModule(str(tmp_path), **CONTRACT, name=str(tmp_path / "set"), val_fraction=0.0)
    assert dm.layout.classes == ["2", "10"]
    files = sorted((dm.root / "training_set" / "10").iterdir())
    assert [f.name for f in files] == ["00000000.jpg", "00000002.jpg"] and files[
        0
    ].read_bytes() == buffer.getvalue()


def test_wrong_columns_splits_and_names_are_one_line_before_any_run(tmp_path: Path) -> None:
    saved = saved_dict(tmp_path / "pets")
    base = ["data=hf", f"data.name={saved}", f"data.root={tmp_path / 'hf'}"]

    def refused(*extra: str) -> str:
        return one_line_error(check_command, "train", [*base, *extra], check_train)

    assert refused("data.label_column=lable") == (
        f"data.label_column=lable: not a column of {saved} (its columns: image, label)"
    )
    assert refused("data.val_split=dev") == (
        f"data.val_split=dev: {saved} has no such split (its splits: train, validation, test)"
    )
    assert not (tmp_path / "hf").exists()  # nothing written by the checks

    train(compose_train([*base, *RUN], tmp_path / "run"))  # written: a wrong column still says so first
    assert refused("data.label_column=lable").startswith("data.label_column=lable: not a column of")
    folder = next((tmp_path / "hf").iterdir())
    assert refused("data.val_fraction=0.2") == (
        f"data.val_fraction=0.2: {folder} was written with data.val_fraction=0.1 (lightcls_source.json); "
        "pass those, or write another copy with data.folder=NEW_FOLDER (or remove that one)"
    )
    assert refused("data.streaming=maybe") == "data.streaming must be true or false, got 'maybe'"
    assert (
        one_line_error(check_command, "train", ["data=hf"], check_train)
        == "data.name is required: pass data.name=..."
    )
    missing = tmp_path / "nothing.parquet"
    assert refused(f"data.name={missing}").startswith(f"data.name={missing}: `datasets` cannot load it (")


def test_a_list_of_class_labels_trains_multi_label_and_evaluates_alone(tmp_path: Path) -> None:
    names = ["cat", "dog", "red fox"]  # a space: the CSV joins names with "|"
    rng = np.random.default_rng(0)
    tags = [[i % 3, (i + 1) % 3] if i % 2 else [i % 3] for i in range(12)]
    features = datasets.Features(
        {"image": datasets.Image(), "tags": datasets.List(datasets.ClassLabel(names=names))}
    )
    rows = {"image": [_png(rng, t[0]) for t in tags], "tags": tags}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "tagged"))
    run = [
        "data=hf",
        f"data.name={tmp_path / 'tagged'}",
        f"data.root={tmp_path / 'hf'}",
        "data.val_fraction=0.25",
    ]
    train(compose_train([*run, *RUN], tmp_path / "run"))
    metrics = _metrics(tmp_path / "run")
    assert metrics["task"] == "multilabel" and metrics["classes"] == names
    folder = Path(metrics["data"])
    lines = (folder / "train.csv").read_text().splitlines()
    assert lines[0] == "filename,labels" and "images/train/00000005.png,cat|red fox" in lines
    assert len(lines) == 1 + 9 and len((folder / "val.csv").read_text().splitlines()) == 1 + 3

    ckpt = quoted(tmp_path / "run" / metrics["last_ckpt"])
    report = evaluate(
        compose_task("eval", [f"ckpt_path={ckpt}", "split=val", "gallery=0"], tmp_path / "eval")
    )
    assert report["num_images"] == 3 and "map" in report
