"""Checkpoints never run pickled code, and a checkpoint of another model or class set is one clear line."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from helpers import compose_train, one_line_error, quoted
from lightcls.errors import LightclsError
from lightcls.tasks import train
from lightcls.tasks.info import publish
from lightcls.training import ClassificationModule


class _RunsCommand:
    """Unpickling this runs `touch MARKER`: what a hostile .ckpt would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture
def evil_ckpt(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint-shaped file whose unpickling would create `marker`."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.ckpt"
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"model": {"name": "lenet"}}, "x": _RunsCommand(marker)}, path
    )
    with pytest.raises(pickle.UnpicklingError):  # sanity: it is refused by weights_only loading
        torch.load(path, weights_only=True)
    assert not marker.exists()
    return path, marker


@pytest.mark.parametrize("key", ["ckpt_path", "model.pretrained"])
def test_hostile_checkpoint_is_refused_before_training(
    evil_ckpt: tuple[Path, Path], digits_root: Path, tmp_path: Path, key: str
) -> None:
    path, marker = evil_ckpt
    cfg = compose_train([f"data.root={digits_root}", "trainer=cpu", f"{key}={path}"], tmp_path / "run")
    assert one_line_error(train, cfg) == (
        f"{key}={path}: refused: it holds pickled objects (posix.system) that loading would run "
        "as code; lightcls only loads tensors and plain data"
    )
    assert not marker.exists()
    assert not list(tmp_path.rglob("last.ckpt")), "nothing may be trained"


def test_hostile_checkpoint_is_refused_by_lightning_loading(evil_ckpt: tuple[Path, Path]) -> None:
    path, marker = evil_ckpt
    with pytest.raises(pickle.UnpicklingError, match="posix.system"):
        ClassificationModule.load_from_checkpoint(path)
    assert not marker.exists()


def test_resume_with_another_model_names_both(trained_run: Path, digits_root: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_train(
        [f"data.root={digits_root}", "trainer=cpu", "model=resnet18", f"ckpt_path={ckpt}"], tmp_path
    )
    with pytest.raises(LightclsError) as err:
        train(cfg)
    assert str(err.value) == (
        f"ckpt_path={ckpt}: holds lenet, 10 classes (zero, one, two, three, ...), 1-channel 32px input, "
        "but this run asks for resnet18, 10 classes (zero, one, two, three, ...), 1-channel 32px input; "
        "resume with the run's own model and data, or fine-tune with model.pretrained=PATH"
    )


def test_resume_with_other_classes_names_both(trained_run: Path, make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_train(
        [f"data.root={root}", "data=hand_gray", f"data.root={root}", "trainer=cpu", f"ckpt_path={ckpt}"],
        tmp_path,
    )
    with pytest.raises(
        LightclsError, match=r"holds lenet, 10 classes .* asks for lenet, 3 classes \(paper, rock"
    ):
        train(cfg)


def test_truncated_checkpoint_is_one_line(trained_run: Path, tmp_path: Path, digits_root: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes((trained_run / "checkpoints" / "last.ckpt").read_bytes()[:1000])
    cfg = compose_train([f"data.root={digits_root}", "trainer=cpu", f"ckpt_path={broken}"], tmp_path)
    with pytest.raises(LightclsError, match=rf"^ckpt_path={broken}: not a readable checkpoint \(.+\)$"):
        train(cfg)


def test_resuming_a_weights_only_checkpoint_says_to_fine_tune(trained_run: Path, digits_root: Path, tmp_path):
    published = publish(trained_run / "checkpoints" / "last.ckpt", tmp_path / "pub")
    cfg = compose_train(
        [f"data.root={digits_root}", "trainer=cpu", f"ckpt_path={quoted(published)}"], tmp_path / "r"
    )
    assert one_line_error(train, cfg) == (
        f"ckpt_path={published}: holds weights only (no optimizer or loop state to resume, e.g. a published "
        f"checkpoint); to start a new run from these weights use model.pretrained={published}"
    )


def _flip_weights(ckpt: Path, out: Path, count: int = 64) -> Path:
    """A copy of `ckpt` with `count` bytes of its largest weight tensor inverted, in the file itself."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    largest = max(state.values(), key=lambda t: t.numel())
    raw = largest.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    data = bytearray(ckpt.read_bytes())
    at = data.find(raw)
    assert at >= 0, "the tensor's bytes are stored as they are"
    data[at : at + count] = bytes(b ^ 0xFF for b in data[at : at + count])
    out.write_bytes(bytes(data))
    return out


def test_a_tampered_checkpoint_is_one_line_in_every_command_that_loads_one(
    trained_run: Path, digits_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from helpers import compose_task
    from lightcls.cli.main import run_task
    from lightcls.tasks import evaluate, export, info, predict
    from lightcls.tasks.explain import explain_images

    last = trained_run / "checkpoints" / "last.ckpt"
    published = publish(last, tmp_path / "pub")  # a published copy keeps the digest valid
    assert ClassificationModule.from_checkpoint(published).classes[0] == "zero"
    bad = _flip_weights(last, tmp_path / "bad.ckpt")
    expected = (
        f"{{key}}={bad}: its weights do not match the digest written with them (the file was changed or "
        "damaged after it was saved); use another checkpoint of the run or train again"
    )
    image = next((digits_root / "test_set").rglob("*.png"))
    tasks = {
        "eval": (evaluate, []),
        "predict": (predict, [f"input={image}"]),
        "export": (export, []),
        "info": (info, []),
        "explain": (explain_images, [f"input={image}"]),
    }
    for name, (task, extra) in tasks.items():
        cfg = compose_task(name, [f"ckpt_path={quoted(bad)}", *extra], tmp_path / name)
        assert one_line_error(task, cfg) == expected.format(key="ckpt_path"), name
    for key in ("ckpt_path", "model.pretrained"):
        cfg = compose_train(
            [f"data.root={digits_root}", "trainer=cpu", f"{key}={quoted(bad)}"], tmp_path / key
        )
        assert one_line_error(train, cfg) == expected.format(key=key)
    with pytest.raises(SystemExit) as stop:  # as the command ends: one line, exit code 2
        run_task(predict, compose_task("predict", [f"ckpt_path={quoted(bad)}", f"input={image}"], tmp_path))
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: " + expected.format(key="ckpt_path") + "\n"
