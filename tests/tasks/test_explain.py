"""lightcls-explain: a heat-map picture per image and explanations.json, for a checkpoint's classes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from helpers import compose_task, one_line_error, quoted
from lightcls.tasks.explain import explain_images


def test_explain_writes_a_picture_per_image(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    folder = digits_root / "test_set" / "three"
    overrides = [f"ckpt_path={quoted(ckpt)}", f"input={folder}", "method=gradcam++", "target=three"]
    summary = explain_images(compose_task("explain", overrides, tmp_path))
    files = sorted(folder.iterdir())
    assert [Path(r["file"]) for r in summary["results"]] == files
    assert summary["layer"] == "features.5"  # lenet at 32 px: the last block that keeps a 5x5 map
    saved = json.loads((tmp_path / "explanations.json").read_text())
    assert saved["results"] == summary["results"]
    for result in summary["results"]:
        assert result["target"] == "three" and len(result["topk"]) == 3
        assert all(0 <= v < 32 for v in result["peak_yx"]) and not result["flat"]  # a trained model's map
        with Image.open(result["picture"]) as picture:  # the 32 px image and its map, 8x, side by side
            assert picture.size == (2 * 256 + 4, 256 + 24)


def test_explain_mistakes_are_one_line(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    ckpt = f"ckpt_path={quoted(trained_run / 'checkpoints' / 'last.ckpt')}"
    image = f"input={next((digits_root / 'test_set' / 'one').iterdir())}"
    cfg = compose_task("explain", [ckpt, image, "target=eleven"], tmp_path)
    assert one_line_error(explain_images, cfg).startswith(
        "target=eleven: not a class of this model; its classes:"
    )
    cfg = compose_task("explain", [ckpt, image, "method=gradcam3"], tmp_path)
    assert one_line_error(explain_images, cfg) == (
        "method=gradcam3: choose one of gradcam, gradcam++, xgradcam, eigencam, layercam, hirescam, scorecam"
    )
    cfg = compose_task("explain", [ckpt, image, "layer=features.9"], tmp_path)
    assert one_line_error(explain_images, cfg).startswith("layer=features.9: no such layer in this model")
