"""lightcls-predict: a file, a folder (with things that are not images), a list; exact error lines."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers import compose_task, one_line_error, quoted
from lightcls.models import build_model
from lightcls.tasks import predict


def _predict(ckpt: Path, input_: Path, out: Path, *extra: str) -> dict:
    return predict(compose_task("predict", [f"ckpt_path={quoted(ckpt)}", f"input={input_}", *extra], out))


def test_folder_predictions_reproduce_the_test_accuracy(
    trained_run: Path, digits_root: Path, tmp_path: Path
) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    summary = _predict(
        trained_run / metrics["best_ckpt"], digits_root / "test_set", tmp_path, "annotate=false"
    )
    results = summary["results"]
    assert len(results) == 270 and summary["skipped"] == []
    correct = sum(Path(r["file"]).parent.name == r["pred_class"] for r in results)
    assert correct / len(results) == pytest.approx(metrics["test_top1"], abs=1e-6)
    first = results[0]
    assert first["pred_class"] == metrics["classes"][first["pred_label"]]
    assert [t["label"] for t in first["topk"]][0] == first["pred_label"]
    assert first["pred_score"] == first["topk"][0]["score"] >= first["topk"][1]["score"]
    assert len(first["topk"]) == 3
    assert json.loads((tmp_path / "predictions.json").read_text())["results"] == results


def test_one_image_and_a_list_file(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    image = sorted((digits_root / "test_set" / "seven").iterdir())[0]
    one = _predict(ckpt, image, tmp_path / "one", "topk=5", "annotate=true")["results"]
    assert len(one) == 1 and len(one[0]["topk"]) == 5
    assert (tmp_path / "one" / "annotated" / f"seven__{image.stem}.png").is_file()
    _predict(ckpt, image, tmp_path / "quiet")
    assert not (tmp_path / "quiet" / "annotated").exists()  # annotated copies only when asked

    listing = tmp_path / "images.txt"
    two = sorted((digits_root / "test_set" / "two").iterdir())[0]
    listing.write_text(f"{image}\n\n{os.path.relpath(two, tmp_path)}\n")
    listed = _predict(ckpt, listing, tmp_path / "list")["results"]
    assert [Path(r["file"]).parent.name for r in listed] == ["seven", "two"]
    assert listed[0]["pred_class"] == one[0]["pred_class"]
    assert listed[0]["pred_score"] == pytest.approx(one[0]["pred_score"], abs=1e-5)  # batch of 2 vs 1


@pytest.mark.slow
def test_command_skips_what_is_not_an_image(
    trained_run: Path, digits_root: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    for name, dest in (("three", folder), ("eight", folder / "nested")):
        for src in sorted((digits_root / "test_set" / name).iterdir())[:2]:
            shutil.copy(src, dest / f"{name}_{src.name}")
    (folder / "notes.md").write_text("not a picture\n")
    (folder / "broken.png").write_bytes(b"this is no png")
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    args = [
        f"ckpt_path={ckpt}",
        f"input={folder}",
        f"save_dir={tmp_path}/out",
        f"sort_into={tmp_path}/sorted",
        "annotate=true",
    ]
    predict(compose_task("predict", [*args, "formats=[json,csv]"], tmp_path / "run"))
    shown = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(summary["results"]) == 4
    assert summary["skipped"] == [
        {"file": str(folder / "notes.md"), "reason": "not an image file"},
        {"file": str(folder / "broken.png"), "reason": "cannot decode image"},
    ]
    assert f"skipped {folder / 'broken.png'}: cannot decode image" in shown
    assert "lightcls predict: 4 images" in shown
    assert len(list((tmp_path / "out" / "annotated").glob("*.png"))) == 4
    sorted_files = sorted(p.name for p in (tmp_path / "sorted").rglob("*.png"))
    assert len(sorted_files) == 4
    for r in summary["results"]:
        assert (tmp_path / "sorted" / r["pred_class"] / Path(r["file"]).name).is_file()
    assert (
        (tmp_path / "out" / "predictions.csv").read_text().startswith("file,pred_label,pred_class,pred_score")
    )


def test_wrong_inputs_are_one_clear_line(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    image = sorted((digits_root / "test_set" / "one").iterdir())[0]
    assert (
        one_line_error(_predict, Path("nope/model.ckpt"), image, tmp_path / "0")
        == "ckpt_path=nope/model.ckpt: no such file"
    )
    state_dict = tmp_path / "lenet.pth"
    torch.save(build_model("lenet", 10, 1).state_dict(), state_dict)
    assert one_line_error(_predict, state_dict, image, tmp_path / "a") == (
        f"ckpt_path={state_dict}: not a lightcls checkpoint (no state_dict with model, classes and "
        "preprocess hyperparameters); to start from other weights use model.pretrained=PATH"
    )
    junk = tmp_path / "random.pt"
    junk.write_bytes(b"\x80\x04 not really a pickle")
    assert (
        one_line_error(_predict, junk, image, tmp_path / "b")
        == f"ckpt_path={junk}: not a readable checkpoint (Unsupported operand 32)"
    )
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("nothing here")
    assert one_line_error(_predict, trained_run / "checkpoints" / "last.ckpt", empty, tmp_path / "c") == (
        f"input={empty}: no images in this folder "
        "(looked for .bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp)"
    )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert one_line_error(_predict, trained_run / "checkpoints" / "last.ckpt", broken, tmp_path / "d") == (
        f"input={broken}: none of its 1 image file(s) could be read ({broken}: cannot decode image)"
    )


def test_tta_flip_answers_a_mirror_symmetric_image_as_without_it(
    trained_run: Path, digits_root: Path, tmp_path: Path
) -> None:
    from PIL import Image

    image = Image.open(sorted((digits_root / "test_set" / "zero").iterdir())[0])
    half = image.crop((0, 0, image.width // 2, image.height))
    symmetric = Image.new(image.mode, (half.width * 2, image.height))
    symmetric.paste(half, (0, 0))
    symmetric.paste(half.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (half.width, 0))
    symmetric.save(tmp_path / "symmetric.png")
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    plain = _predict(ckpt, tmp_path / "symmetric.png", tmp_path / "a", "topk=10")["results"][0]
    flipped = _predict(ckpt, tmp_path / "symmetric.png", tmp_path / "b", "topk=10", "tta=flip")["results"][0]
    assert flipped["pred_class"] == plain["pred_class"]
    assert [t["score"] for t in flipped["topk"]] == pytest.approx(
        [t["score"] for t in plain["topk"]], abs=1e-6
    )
    crops = _predict(ckpt, tmp_path / "symmetric.png", tmp_path / "c", "tta=five_crop")["results"][0]
    assert crops["pred_score"] != pytest.approx(plain["pred_score"], abs=1e-6)  # five other views


def test_eval_reports_what_tta_gains(trained_run: Path, tmp_path: Path) -> None:
    from lightcls.tasks import evaluate

    ckpt = trained_run / "checkpoints" / "last.ckpt"
    report = evaluate(compose_task("eval", [f"ckpt_path={quoted(ckpt)}", "tta=flip"], tmp_path))
    tta = report["tta"]
    plain = evaluate(compose_task("eval", [f"ckpt_path={quoted(ckpt)}"], tmp_path / "plain"))
    assert tta["mode"] == "flip" and tta["without"] == pytest.approx(plain["top1"], abs=1e-6)
    assert tta["with"] == pytest.approx(report["top1"]) and tta["gain"] == pytest.approx(
        tta["with"] - tta["without"]
    )
    assert json.loads((tmp_path / "eval.json").read_text())["tta"] == tta
