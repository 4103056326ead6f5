"""Annotation files: each multi-label format read as its tool writes it, to the same labels; one line per
mistake, naming the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import one_line_error
from lightcls.data.annotations import read_annotations
from lightcls.data.check import check_dataset
from lightcls.data.digits import CLASSES, write_multilabel_digits
from lightcls.data.layout import read_layout


@pytest.fixture(scope="module")
def tags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny multi-label set: canvases of one to three digits, annotated in every format."""
    return write_multilabel_digits(
        tmp_path_factory.mktemp("data") / "tags", sizes=(30, 12, 12), image_size=32
    )


def _labels(root: Path, suffix: str) -> dict[str, dict[str, tuple[int, ...]]]:
    lists = {s: f"{s}{suffix}" for s in ("train", "val", "test")}
    layout = read_layout(root, lists=lists)
    assert layout.multilabel
    assert layout.classes == CLASSES
    return {s: {p.name: label for p, label in v} for s, v in layout.splits.items()}


def test_csv_mmpretrain_json_and_paddleclas_lists_give_the_same_labels(tags: Path) -> None:
    from_csv = _labels(tags, ".csv")
    assert from_csv == _labels(tags, ".json") == _labels(tags, "_paddle.txt")
    assert len(from_csv["train"]) == 30
    assert {len(label) for label in from_csv["train"].values()} <= {1, 2, 3}
    # the same per-class counts in the data check, whichever file it is given
    counts = {
        suffix: check_dataset(tags, lists={s: f"{s}{suffix}" for s in ("train", "val")}).layout.class_counts()
        for suffix in (".csv", ".json", "_paddle.txt")
    }
    assert counts[".csv"] == counts[".json"] == counts["_paddle.txt"]
    assert sum(counts[".csv"]) == sum(len(v) for v in from_csv["train"].values())


def test_index_lists_an_unlabelled_image_and_a_single_label_list(tags: Path) -> None:
    rows = json.loads((tags / "train.json").read_text())["data_list"]
    lines = [f"{r['img_path']} {','.join(map(str, r['gt_label']))}" for r in rows[:3]]
    (tags / "indices.txt").write_text("\n".join(lines) + "\n")
    found = read_annotations(tags / "indices.txt", CLASSES)
    assert found.multilabel
    assert [label for _, label in found.samples] == [tuple(r["gt_label"]) for r in rows[:3]]

    (tags / "none.csv").write_text(f"filename,labels\n{rows[0]['img_path']},\n")
    assert read_annotations(tags / "none.csv", CLASSES).samples[0][1] == ()  # all negative: allowed

    (tags / "single.txt").write_text(f"{rows[0]['img_path']} 3\n")
    single = read_annotations(tags / "single.txt", CLASSES)
    assert not single.multilabel and single.samples[0][1] == 3  # single-label lists stay single-label


def test_csv_without_classes_txt_takes_its_names_and_label_delim(tmp_path: Path, tags: Path) -> None:
    image = tags / "images" / "train_00000.png"
    (tmp_path / "train.csv").write_text(f"file,tags\n{image},cat|dog\n{image},dog\n")
    found = read_annotations(tmp_path / "train.csv", None, label_delim="|")
    assert found.classes == ["cat", "dog"]
    assert [label for _, label in found.samples] == [(0, 1), (1,)]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "filename,labels\nIMG,two\nIMG,two eleven\n", "a.csv:3: label 'eleven' is not a class"),
        ("b.csv", "filename,labels\nnope.png,two\n", "b.csv:2: file {root}/nope.png does not exist"),
        ("c.csv", "name;labels\nIMG;two\n", "c.csv:1: expected a header naming the file and labels columns"),
        ("d.txt", "IMG\t0,1,0\n", "d.txt:1: expected a multi-hot vector of 10 0/1 values (one per class)"),
        ("e.txt", "IMG 1,x\n", "e.txt:1: label 'x' is not a class index"),
        ("f.txt", "IMG 1,12\n", "f.txt:1: label 12 is not in 0..9"),
        ("g.txt", "just-a-path\n", "g.txt:1: expected '<file> <label>' or '<file> <i>,<j>'"),
        ("h.json", '{"data_list": [', "h.json:1: not valid JSON"),
        (
            "i.json",
            '{"data_list": [{"img_path": "IMG", "gt_label": [1, 10]}]}',
            "i.json: data_list[0]: label 10",
        ),
    ],
)
def test_a_bad_annotation_is_one_line_naming_file_and_line(
    tags: Path, tmp_path: Path, name: str, text: str, message: str
) -> None:
    image = tags / "images" / "train_00000.png"
    (tmp_path / name).write_text(text.replace("IMG", str(image)))
    error = one_line_error(read_annotations, tmp_path / name, CLASSES)
    assert error.startswith(f"{tmp_path / name}".removesuffix(name) + message.format(root=tmp_path)), error


def test_data_check_counts_labels_and_warns_of_unlabelled_images_and_classes_unseen_in_val(
    tags: Path, tmp_path: Path
) -> None:
    rows = json.loads((tags / "val.json").read_text())["data_list"]
    (tags / "val_small.csv").write_text(
        f"filename,labels\n{rows[0]['img_path']},\n{rows[1]['img_path']},zero\n"
    )
    findings = check_dataset(tags, lists={"train": "train.csv", "val": "val_small.csv"}, cache=False)
    assert findings.ok
    assert "val: 1 image(s) with no label (all negative)" in findings.warnings
    assert any(
        w.startswith("classes never seen in val (no AP for them): one, two") for w in findings.warnings
    )


def test_lightcls_data_check_reads_annotation_files(
    tags: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import run_data

    args = ["check", f"data.root={tags}", "data.train_list=train_paddle.txt", "data.val_list=val.json"]
    result = run_data(args, tmp_path, capsys, monkeypatch)
    assert result.returncode == 0, result.stderr
    assert "train is multi-label: an image counts once for each of its labels (images: " in result.stdout
    assert "train: 30 images" in result.stdout
