"""lightcls-export: ONNX parity in ONNX Runtime, TorchScript loads and agrees, predict runs the .onnx."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from helpers import compose_task, one_line_error, quoted
from lightcls.ckpt import DATA_KEY
from lightcls.data.decode import load_image
from lightcls.data.preprocess import Preprocess
from lightcls.inference import CheckpointPredictor
from lightcls.tasks import export, predict


@pytest.fixture(scope="module")
def some_images(digits_root: Path) -> list[Path]:
    """One test image of each digit."""
    return [sorted(d.iterdir())[0] for d in sorted((digits_root / "test_set").iterdir())]


def _batch(images: list[Path], preprocess: dict) -> torch.Tensor:
    transform = Preprocess.from_dict(preprocess).eval_transform()
    return torch.stack([transform(load_image(p, preprocess["channels"])) for p in images])


def test_onnx_export_agrees_in_onnx_runtime(
    trained_run: Path, some_images: list[Path], tmp_path: Path
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    result = export(compose_task("export", [f"ckpt_path={ckpt}", "format=onnx"], tmp_path))
    assert result["source"] == "real" and result["images"] == 8
    assert result["max_abs_diff"] < 1e-4 and result["same_top1"]

    contract = json.loads((tmp_path / "model.json").read_text())
    assert contract["classes"][:3] == ["zero", "one", "two"]
    assert contract["preprocess"]["image_size"] == 32 and contract["preprocess"]["channels"] == 1
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = _batch(some_images, contract["preprocess"])  # 10 images: the batch dimension is free
    onnx_logits = session.run(None, {contract["input_name"]: batch.numpy()})[0]
    torch_logits = CheckpointPredictor(ckpt).logits(batch).numpy()
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).all()

    # lightcls-predict on the .onnx gives the checkpoint's answers
    folder = some_images[0].parent.parent
    via_onnx = _predict(tmp_path / "model.onnx", folder, tmp_path / "p1")
    via_ckpt = _predict(ckpt, folder, tmp_path / "p2")
    assert [r["pred_label"] for r in via_onnx] == [r["pred_label"] for r in via_ckpt]
    assert max(abs(a["pred_score"] - b["pred_score"]) for a, b in zip(via_onnx, via_ckpt, strict=True)) < 1e-5

    # a model.json that disagrees with its .onnx (another export's contract) is one line
    contract["classes"] = contract["classes"][:5]
    (tmp_path / "model.json").write_text(json.dumps(contract))
    assert one_line_error(_predict, tmp_path / "model.onnx", folder, tmp_path / "p3") == (
        f"ckpt_path={tmp_path / 'model.onnx'}: the model takes 1x32x32 inputs and gives 10 scores, but "
        "model.json says 1x32x32 and 5 classes; export it again (model and model.json together)"
    )
    (tmp_path / "model.json").write_text('{"classes": ["ze')
    assert one_line_error(_predict, tmp_path / "model.onnx", folder, tmp_path / "p3").startswith(
        f"{tmp_path / 'model.json'}: cannot be read ("
    )


def test_an_opset_torch_cannot_write_is_one_line_and_no_file(
    trained_run: Path, tmp_path: Path, capfd
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_task("export", [f"ckpt_path={ckpt}", "opset=13"], tmp_path)
    assert one_line_error(export, cfg) == (
        "opset=13: torch.onnx cannot convert this model to opset 13 (it wrote opset 18); leave opset unset "
        "or give 18 or higher"
    )
    assert not (tmp_path / "model.onnx").exists()
    assert "Traceback" not in capfd.readouterr().err


def _predict(model: Path, images: Path, out: Path) -> list[dict]:
    """lightcls-predict's results for `images` (a file, folder or list) with a .ckpt or .onnx model."""
    overrides = [f"ckpt_path={model}", f"input={images}", "annotate=false"]
    return predict(compose_task("predict", overrides, out))["results"]


def test_torchscript_export_loads_and_agrees(
    trained_run: Path, some_images: list[Path], tmp_path: Path, capsys
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={quoted(ckpt)}", "format=torchscript", f"save_dir={tmp_path}/ts", "name=digits_lenet"]
    export(compose_task("export", args, tmp_path / "run"))
    shown = capsys.readouterr().out
    assert "parity on 8 real images: max abs logit diff" in shown and "same top-1 True" in shown

    scripted = torch.jit.load(str(tmp_path / "ts" / "digits_lenet.pt"))
    contract = json.loads((tmp_path / "ts" / "digits_lenet.json").read_text())
    batch = _batch(some_images, contract["preprocess"])
    with torch.inference_mode():
        expected = CheckpointPredictor(ckpt).logits(batch)
        got = scripted(batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_fixed_batch_onnx_still_predicts_many(
    trained_run: Path, some_images: list[Path], tmp_path: Path
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    export(compose_task("export", [f"ckpt_path={ckpt}", "dynamic_batch=false", "parity_images=3"], tmp_path))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 1, 32, 32]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in some_images) + "\n")
    results = _predict(tmp_path / "model.onnx", listing, tmp_path / "p")
    assert len(results) == 10


def test_fp16_onnx_is_half_the_size_and_agrees_at_fp16_tolerance(
    trained_run: Path, exported_onnx: Path, some_images: list[Path], tmp_path: Path
) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    half = export(compose_task("export", [f"ckpt_path={ckpt}", "fp16=true"], tmp_path / "fp16"))
    fp32_bytes = _weight_bytes(str(exported_onnx), np.float32)  # the same checkpoint at fp32
    assert _weight_bytes(half["model"], np.float16) * 2 == pytest.approx(fp32_bytes, rel=0.01)
    assert _weight_bytes(half["model"], np.float32) < 0.01 * fp32_bytes
    assert json.loads((tmp_path / "fp16" / "model.json").read_text())["precision"] == "fp16"
    # fp16 rounding: more than fp32's 1e-4 allows, within 1% of the largest logit
    assert 1e-4 < half["max_abs_diff"] <= half["allowed_diff"] and half["same_top1"]

    session = ort.InferenceSession(half["model"], providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"  # the interface stays float32
    folder = some_images[0].parent.parent
    labels = [r["pred_label"] for r in _predict(Path(half["model"]), folder, tmp_path / "p1")]
    assert labels == [r["pred_label"] for r in _predict(ckpt, folder, tmp_path / "p2")]


def _weight_bytes(path: str, dtype: type) -> int:
    """Bytes of an ONNX model's stored `dtype` weights (its initializers)."""
    arrays = [numpy_helper.to_array(init) for init in onnx.load(path).graph.initializer]
    return sum(a.nbytes for a in arrays if a.dtype == dtype)


def test_a_too_strict_parity_tolerance_fails_in_one_line(trained_run: Path, tmp_path: Path) -> None:
    from lightcls.errors import LightclsError

    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_task(
        "export", [f"ckpt_path={ckpt}", "fp16=true", "parity_rtol=0", "parity_atol=1e-7"], tmp_path
    )
    with pytest.raises(LightclsError, match=r"^parity check failed for .*model\.onnx: max abs logit diff "):
        export(cfg)


def test_unknown_format_is_one_line(trained_run: Path, tmp_path: Path) -> None:
    from lightcls.errors import LightclsError

    cfg = compose_task(
        "export", [f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "format=tflite"], tmp_path
    )
    with pytest.raises(LightclsError, match=r"^format=tflite: choose one of onnx, torchscript$"):
        export(cfg)


def test_a_switch_that_is_not_true_or_false_is_refused_before_any_run_dir(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from helpers import assert_refused, refused_in_process

    args = [f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "fp16=maybe"]
    result = refused_in_process("export", [*args, f"paths.outputs_root={tmp_path}/outputs"], capsys)
    assert_refused(result, "fp16=maybe: give true or false")
    assert not (tmp_path / "outputs").exists()


@pytest.fixture(scope="module")
def int8_export(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """The session run's last.ckpt exported as int8 (64 calibration images): its result, what it printed."""
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    out = tmp_path_factory.mktemp("int8")
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        result = export(
            compose_task("export", [f"ckpt_path={ckpt}", "quantize=int8", "calibration_images=64"], out)
        )
    return result, shown.getvalue()


def test_int8_export_is_smaller_agrees_with_fp32_and_predicts(
    int8_export: tuple[dict, str],
    trained_run: Path,
    digits_root: Path,
    some_images: list[Path],
    tmp_path: Path,
) -> None:
    result, shown = int8_export
    model = Path(result["model"])
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.json", "model.onnx"]  # no fp32 left
    contract = json.loads(model.with_suffix(".json").read_text())
    assert contract["precision"] == "int8" and contract["file"] == "model.onnx"
    assert contract["quantization"] == (
        "static QDQ, per-channel int8 weights, uint8 activations, 64 calibration images"
    )
    assert result["quantization"] == "static" and result["calibration_images"] == 64
    assert result["max_abs_diff"] < 1e-4 and result["same_top1"]  # the fp32 export before quantizing

    # int8 weights: a byte per weight (and per channel's zero point); float32 only in the few scales
    net = CheckpointPredictor(trained_run / "checkpoints" / "last.ckpt").module.net
    weights = [p for p in net.parameters() if p.dim() > 1]
    assert _weight_bytes(str(model), np.int8) == pytest.approx(sum(p.numel() for p in weights), rel=0.01)
    assert _weight_bytes(str(model), np.float32) < 0.02 * 4 * sum(p.numel() for p in net.parameters())
    assert result["int8_mb"] == model.stat().st_size / 2**20 < 0.6 * result["fp32_mb"]

    # on the val split: nearly always fp32's top-1, and about its accuracy
    assert (result["compare_split"], result["compare_images"]) == ("val", 270)
    assert result["agreement"] >= 0.95
    assert abs(result["int8_accuracy"] - result["fp32_accuracy"]) <= 0.03 and result["fp32_accuracy"] > 0.5
    assert result["fp32_images_per_s"] > 0 and result["int8_images_per_s"] > 0 and result["speed_batch"] == 32
    files = sorted((digits_root / "val_set").glob("*/*.png"))  # the figures, recomputed
    batch = _batch(files, contract["preprocess"])
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    int8 = session.run(None, {"input": batch.numpy()})[0].argmax(1)
    fp32 = CheckpointPredictor(trained_run / "checkpoints" / "last.ckpt").logits(batch).numpy().argmax(1)
    truth = np.array([contract["classes"].index(f.parent.name) for f in files])
    assert result["int8_accuracy"] == pytest.approx((int8 == truth).mean())
    assert result["agreement"] == pytest.approx((int8 == fp32).mean(), abs=1.5 / 270)  # a tie may flip
    first, second = shown.strip().splitlines()
    assert first.startswith(
        f"exported {model} (int8: static QDQ calibrated on 64 train images, + model.json); fp32 parity on 8 "
        "real images: max abs logit diff "
    )
    assert second == (
        f"int8 vs fp32 on 270 val images: top-1 {result['int8_accuracy']:.1%} vs "
        f"{result['fp32_accuracy']:.1%}, same top-1 {result['agreement']:.1%}, "
        f"{result['int8_mb']:.2f} vs {result['fp32_mb']:.2f} MB, "
        f"{result['int8_images_per_s']:.0f} vs {result['fp32_images_per_s']:.0f} images/s "
        "(ONNX Runtime, CPU, batch 32)"
    )

    # lightcls-predict runs it: the checkpoint's answers
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in some_images) + "\n")
    via_int8 = [r["pred_label"] for r in _predict(model, listing, tmp_path / "p1")]
    via_ckpt = [
        r["pred_label"] for r in _predict(trained_run / "checkpoints" / "last.ckpt", listing, tmp_path / "p2")
    ]
    assert sum(a == b for a, b in zip(via_int8, via_ckpt, strict=True)) >= 9


def test_an_int8_model_that_disagrees_with_fp32_is_one_line_and_not_written(
    trained_run: Path, digits_root: Path, tmp_path: Path, monkeypatch
) -> None:
    from lightcls.inference import quantize

    monkeypatch.setattr(quantize, "compare", lambda *_: {"agreement": 0.5})
    moved = _data_set_moved(trained_run / "checkpoints" / "last.ckpt", tmp_path)
    calibration = f"calibration_input={digits_root / 'training_set'}"  # its data set is not on disk
    args = [f"ckpt_path={moved}", "quantize=int8", calibration, "calibration_images=8"]
    cfg = compose_task("export", args, tmp_path / "out")
    assert one_line_error(export, cfg) == (
        "quantize=int8: the int8 model gives fp32's top-1 on only 50.0% of 8 unlabelled images "
        "(min_agreement=0.9); nothing written: calibrate on other images (calibration_input=DIR, "
        "calibration_images=) or export fp32"
    )
    assert list((tmp_path / "out").iterdir()) == []


def _data_set_moved(ckpt: Path, tmp_path: Path) -> Path:
    """A copy of `ckpt` whose data set is no longer on disk."""
    saved = torch.load(ckpt, weights_only=True)
    saved[DATA_KEY] = {**saved[DATA_KEY], "root": str(tmp_path / "gone")}
    torch.save(saved, tmp_path / "moved.ckpt")
    return tmp_path / "moved.ckpt"


def test_where_static_quantization_fails_dynamic_is_written_in_one_warning(
    exported_onnx: Path, some_images: list[Path], tmp_path: Path, monkeypatch, caplog
) -> None:
    from lightcls.inference import quantize

    def unsupported(*_: object, **__: object) -> None:
        raise RuntimeError("no QDQ for op Foo\n(details)")

    monkeypatch.setattr(quantize, "quantize_static", unsupported)
    contract = json.loads(exported_onnx.with_suffix(".json").read_text())
    reader = quantize.ImageCalibration(some_images, Preprocess.from_dict(contract["preprocess"]))
    with caplog.at_level("WARNING", logger="lightcls.inference.quantize"):
        assert quantize.quantize_onnx(exported_onnx, tmp_path / "dynamic.onnx", reader) == "dynamic"
    assert [r.getMessage() for r in caplog.records] == [
        "quantize=int8: static quantization failed (no QDQ for op Foo); wrote dynamic quantization instead"
    ]
    batch = _batch(some_images, contract["preprocess"]).numpy()
    run = {
        p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        for p in (exported_onnx, tmp_path / "dynamic.onnx")
    }
    fp32, dynamic = (s.run(None, {"input": batch})[0].argmax(1) for s in run.values())
    assert (fp32 == dynamic).mean() >= 0.9


def test_int8_mistakes_are_one_line_before_anything_is_written(trained_run: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"

    def refused(*args: str) -> str:
        return one_line_error(export, compose_task("export", [f"ckpt_path={ckpt}", *args], tmp_path / "out"))

    assert refused("quantize=int8", "format=torchscript") == (
        "quantize=int8: ONNX Runtime quantizes ONNX; give format=onnx"
    )
    assert (
        refused("quantize=int8", "fp16=true")
        == "quantize=int8: it quantizes the fp32 model; leave fp16=false"
    )
    assert refused("quantize=int4") == "quantize=int4: choose one of int8"
    assert (
        refused("quantize=int8", "calibration_images=0") == "calibration_images=0: give a whole number >= 1"
    )

    # a checkpoint whose data set is not on disk: say how to give calibration images
    moved = _data_set_moved(ckpt, tmp_path)
    assert one_line_error(
        export, compose_task("export", [f"ckpt_path={moved}", "quantize=int8"], tmp_path / "out")
    ) == (
        f"quantize=int8: {moved} names no data set on disk to calibrate on; give calibration_input=DIR (a "
        "folder of images like its training images)"
    )
    assert not (tmp_path / "out").exists()
