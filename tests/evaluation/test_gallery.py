"""The mistakes gallery: exactly the misclassified images, most confident first, as grids per class."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from helpers import compose_task, quoted
from lightcls.tasks import evaluate


def test_the_gallery_lists_exactly_the_misclassified_test_images(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    report = evaluate(compose_task("eval", [f"ckpt_path={quoted(ckpt)}", "gallery_right=true"], tmp_path))
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    wrong_rows = {(r["file"], r["true_class"], r["pred_class"]) for r in rows if r["correct"] == "0"}
    assert wrong_rows  # a 3-epoch lenet makes some mistakes

    mistakes = json.loads((tmp_path / "gallery" / "mistakes.json").read_text())
    listed = [
        (i["file"], i["true_class"], i["pred_class"]) for items in mistakes["wrong"].values() for i in items
    ]
    assert sorted(listed) == sorted(wrong_rows)
    for name, items in mistakes["wrong"].items():
        assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
        with Image.open(tmp_path / "gallery" / f"wrong_{name}.png") as grid:  # one tile per mistake, up to 16
            assert grid.width == 128 * min(8, len(items)) and grid.height == 158 * -(
                -min(16, len(items)) // 8
            )
    assert set(mistakes["least_confident_right"]) <= set(report["classes"])

    pairs = mistakes["confused_pairs"]
    assert sum(p["count"] for p in pairs) == len(wrong_rows)
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    assert report["confused_pairs"] == pairs[:10]
    matrix = report["confusion_matrix"]
    first = pairs[0]
    classes = report["classes"]
    assert matrix[classes.index(first["true_class"])][classes.index(first["pred_class"])] == first["count"]

    from lightcls.workflows import page as report_page

    monkeypatch.setattr(report_page, "GALLERY_CLASSES", 2)  # a page for many classes shows the worst ones
    page = report_page.build_report(tmp_path).read_text()
    worst = sorted(mistakes["wrong"], key=lambda name: -len(mistakes["wrong"][name]))[:2]
    shown = [
        line.split('alt="mistakes of ')[1].split('"')[0]
        for line in page.splitlines()
        if "mistakes of" in line
    ]
    assert sorted(shown) == sorted(worst)
    assert f"{len(mistakes['wrong']) - 2} more in <code>{tmp_path / 'gallery'}</code>" in page
