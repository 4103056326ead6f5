"""lightcls-index and lightcls-similar: an index of digits' test set finds each image itself first and
neighbours of its class; its retrieval is as good as the classifier; other weights are refused in one line;
lightcls-predict embed=true writes the embeddings."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import compose_task, one_line_error, quoted
from lightcls.inference.similar import load_index
from lightcls.tasks import predict
from lightcls.tasks.index import index
from lightcls.tasks.similar import similar


@pytest.fixture(scope="module")
def digits_index(trained_run: Path, digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of digits' test set under the session run's last.ckpt, evaluated."""
    out = tmp_path_factory.mktemp("index")
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    overrides = [f"ckpt_path={quoted(ckpt)}", f"input={digits_root / 'test_set'}", "evaluate=true"]
    index(compose_task("index", overrides, out))
    return out


def _similar(folder: Path, query: Path, out: Path, *extra: str) -> dict:
    return similar(compose_task("similar", [f"index={folder}", f"query={query}", *extra], out))


def test_each_image_finds_itself_first(digits_index: Path, digits_root: Path, trained_run: Path) -> None:
    meta = json.loads((digits_index / "index.json").read_text())
    assert (meta["count"], meta["dim"], meta["search"], meta["model"]) == (270, 84, "exact", "lenet")
    assert meta["ckpt"] == str((trained_run / "checkpoints" / "last.ckpt").resolve())
    built = load_index(digits_index)
    assert built.labels is not None and built.labels[0] == Path(built.files[0]).parent.name
    query = sorted((digits_root / "test_set" / "five").iterdir())[3]
    found = _similar(digits_index, query, digits_index / "one", "k=3")["results"][0]["neighbours"]
    assert [n["rank"] for n in found] == [1, 2, 3] and found[0]["file"] == str(query.resolve())
    assert found[0]["score"] == pytest.approx(1, abs=1e-5)
    assert found[0]["score"] >= found[1]["score"] >= found[2]["score"]


def test_neighbours_of_a_new_image_are_of_its_class(
    digits_index: Path, digits_root: Path, tmp_path: Path, capsys
) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    for name in ("zero", "four", "seven"):
        shutil.copy(sorted((digits_root / "val_set" / name).iterdir())[0], queries / f"{name}.png")
    summary = _similar(digits_index, queries, tmp_path / "out")
    shown = capsys.readouterr().out
    for result in summary["results"]:
        labels = [n["label"] for n in result["neighbours"]]
        assert labels.count(Path(result["query"]).stem) >= 3 and len(labels) == 5, labels  # most of them
    assert json.loads((tmp_path / "out" / "similar.json").read_text()) == summary
    assert "lightcls similar" in shown and "rank" in shown and "label" in shown


def test_leave_one_out_retrieval_is_as_good_as_the_classifier(digits_index: Path, trained_run: Path) -> None:
    scores = json.loads((digits_index / "index_eval.json").read_text())
    top1 = json.loads((trained_run / "metrics.json").read_text())["test_top1"]
    assert scores["queries"] == 270 and scores["recall@1"] >= top1 - 0.05, (scores, top1)
    assert scores["recall@5"] >= scores["recall@1"] and 0 < scores["mAP@5"] <= 1
    assert json.loads((digits_index / "index.json").read_text())["evaluation"] == scores
    built = load_index(digits_index)
    vectors = built.index.reconstruct_n(0, built.index.ntotal)
    cosine = vectors @ vectors.T
    np.fill_diagonal(cosine, -np.inf)  # each image left out of its own neighbours
    labels = np.array(built.labels)
    assert scores["recall@1"] == pytest.approx(np.mean(labels[cosine.argmax(1)] == labels), abs=1e-9)


def test_an_approximate_index_above_the_size_given(
    trained_run: Path, digits_root: Path, tmp_path: Path
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    overrides = [
        f"ckpt_path={quoted(ckpt)}",
        f"input={digits_root / 'test_set' / 'two'}",
        "approximate_above=10",
    ]
    meta = index(compose_task("index", overrides, tmp_path))
    assert (meta["search"], meta["faiss_index"], meta["labelled"]) == ("approximate", "IndexHNSWFlat", False)
    query = sorted((digits_root / "test_set" / "two").iterdir())[0]
    found = _similar(tmp_path, query, tmp_path / "out", "k=2")["results"][0]["neighbours"]
    assert found[0]["file"] == str(query.resolve()) and "label" not in found[0]


def test_other_weights_and_missing_indexes_are_one_line(
    digits_index: Path, digits_root: Path, trained_run: Path, tmp_path: Path
) -> None:
    query = sorted((digits_root / "test_set" / "one").iterdir())[0]
    other = tmp_path / "other.ckpt"
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    ckpt.pop("weights_sha256", None)
    torch.save(ckpt, other)
    meta = json.loads((digits_index / "index.json").read_text())
    assert one_line_error(_similar, digits_index, query, tmp_path, f"ckpt_path={quoted(other)}") == (
        f"index={digits_index} was built with {meta['ckpt']} (weights {meta['weights_sha256'][:12]}); "
        f"ckpt_path={other} has other weights: build the index again with it"
    )
    same = _similar(digits_index, query, tmp_path, f"ckpt_path={quoted(meta['ckpt'])}")
    assert same["ckpt"] == meta["ckpt"]
    calibrated = tmp_path / "calibrated.ckpt"  # the same network, a temperature written into it later
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["state_dict"]["temperature"] = torch.tensor(2.0)
    ckpt.pop("weights_sha256", None)
    torch.save(ckpt, calibrated)
    assert _similar(digits_index, query, tmp_path, f"ckpt_path={quoted(calibrated)}")["ckpt"] == str(
        calibrated
    )
    assert one_line_error(_similar, tmp_path / "nowhere", query, tmp_path) == (
        f"index={tmp_path / 'nowhere'}: no such folder; build one with lightcls-index"
    )
    broken = tmp_path / "broken"
    shutil.copytree(digits_index, broken)
    (broken / "files.txt").unlink()
    assert one_line_error(_similar, broken, query, tmp_path) == (
        f"index={broken}: no files.txt in it; build the index again with lightcls-index"
    )


def test_predict_embed_writes_the_embeddings(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    folder = digits_root / "test_set" / "eight"
    args = [f"ckpt_path={quoted(ckpt)}", f"input={folder}", "embed=true"]
    summary = predict(compose_task("predict", args, tmp_path))
    vectors = np.load(tmp_path / "embeddings.npy")
    files = (tmp_path / "embeddings.txt").read_text().splitlines()
    assert files == [r["file"] for r in summary["results"]] and len(files) == len(list(folder.iterdir()))
    assert vectors.shape == (len(files), 84) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert summary["embeddings"] == str(tmp_path / "embeddings.npy")
    onnx = [f"ckpt_path={quoted(tmp_path / 'model.onnx')}", f"input={folder}", "embed=true"]
    assert one_line_error(predict, compose_task("predict", onnx, tmp_path)) == (
        f"ckpt_path={tmp_path / 'model.onnx'}: an exported model has no embeddings (class scores only); "
        "pass the .ckpt it was exported from"
    )


def test_without_faiss_one_line_says_what_to_install(
    digits_index: Path, digits_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    query = sorted((digits_root / "test_set" / "one").iterdir())[0]
    assert one_line_error(_similar, digits_index, query, tmp_path) == (
        "similar-image search needs faiss: pip install 'lightcls[index]'"
    )
