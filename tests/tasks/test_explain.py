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


def test_what_is_not_an_image_or_not_our_checkpoint_is_one_line(
    trained_run: Path, digits_root: Path, tmp_path: Path
) -> None:
    import torch

    ckpt = f"ckpt_path={quoted(trained_run / 'checkpoints' / 'last.ckpt')}"
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "fake.jpg").write_text("not an image")
    cfg = compose_task("explain", [ckpt, f"input={folder / 'fake.jpg'}"], tmp_path / "one")
    assert one_line_error(explain_images, cfg) == (
        f"input={folder / 'fake.jpg'}: none of its 1 image file(s) could be read "
        f"({folder / 'fake.jpg'}: cannot decode image)"
    )
    digit = next((digits_root / "test_set" / "one").iterdir())
    (folder / digit.name).write_bytes(
        digit.read_bytes()
    )  # a folder with one good image: that one is explained
    summary = explain_images(compose_task("explain", [ckpt, f"input={folder}"], tmp_path / "some"))
    assert [Path(r["file"]).name for r in summary["results"]] == [digit.name]
    assert summary["skipped"] == [{"file": str(folder / "fake.jpg"), "reason": "cannot decode image"}]
    other = tmp_path / "other.pth"  # a state dict saved by a plain PyTorch loop
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, other)
    cfg = compose_task("explain", [f"ckpt_path={quoted(other)}", f"input={digit}"], tmp_path / "other")
    assert one_line_error(explain_images, cfg).startswith(f"ckpt_path={other}: not a lightcls checkpoint")
