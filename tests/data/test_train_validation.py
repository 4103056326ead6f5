"""Training checks the data at start (the dataset doctor, cached): broken images fail or are skipped."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from hydra.utils import instantiate
from PIL import Image

from conftest import compose_train, run_cli
from lightcls.data.check import CACHE_FILE, check_dataset
from lightcls.tasks import train

SMALL = ["data=folder", "data.image_size=16", "data.num_workers=0", "trainer=cpu", "logger=none"]


def _truncated_jpeg(path: Path) -> Path:
    """A JPEG cut after 200 bytes: Pillow opens it but cannot decode it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def test_broken_image_fails_the_run_before_training(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    broken = _truncated_jpeg(root / "training_set" / "rock" / "broken.jpg")
    out = tmp_path / "out"
    result = run_cli(
        [*SMALL, f"data.root={root}", "trainer.max_epochs=1", f"paths.outputs_root={out}"], tmp_path
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 1 broken image(s) in {root}: {broken}: cannot decode image (Truncated File Read); "
        f"run `lightcls-data check data.root={root}` for the full report, "
        "or set data.on_broken=skip to train without them"
    )
    assert not list(out.rglob("*.ckpt")) and not list(out.rglob("metrics.json"))


def test_many_broken_images_are_named_in_one_line(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    for i in range(5):
        (root / "val_set" / "paper" / f"empty{i}.png").write_bytes(b"")
    cfg = compose_train([*SMALL, f"data.root={root}", "trainer.max_epochs=1"], tmp_path / "run")
    with pytest.raises(Exception, match=r"^5 broken image\(s\) in .*empty0\.png: cannot decode image") as err:
        train(cfg)
    message = str(err.value)
    assert "\n" not in message and "empty2.png" in message and "empty3.png" not in message
    assert "; and 2 more; run `lightcls-data check" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_skip_trains_without_the_broken_files(make_split_folder, tmp_path: Path, caplog) -> None:
    root = make_split_folder()
    broken = _truncated_jpeg(root / "training_set" / "rock" / "broken.jpg")
    run_dir = tmp_path / "run"
    overrides = [
        *SMALL,
        f"data.root={root}",
        "data.on_broken=skip",
        "data.batch_size=1",
        "trainer.max_epochs=1",
    ]
    with caplog.at_level(logging.WARNING):
        metrics = train(compose_train(overrides, run_dir))
    assert metrics["global_step"] == 12  # 3 classes x 4 good images, one per step: the broken one left out
    skipped = [r.getMessage() for r in caplog.records if "on_broken=skip" in r.getMessage()]
    assert skipped == [f"data.on_broken=skip: training without 1 broken image(s): {broken}"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_leakage_warns_at_training_start(make_split_folder, tmp_path: Path, caplog) -> None:
    root = make_split_folder()  # the fixture draws the same solid images in every split: all leak
    with caplog.at_level(logging.WARNING):
        train(compose_train([*SMALL, f"data.root={root}", "trainer.max_epochs=1"], tmp_path / "run"))
    leaks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("leakage:")]
    first = root / "training_set" / "paper" / "paper00.png"
    assert leaks[0] == (
        f"leakage: the same image is in test and train and val: {first} (train), "
        f"{root / 'val_set/paper/paper00.png'} (val), {root / 'test_set/paper/paper00.png'} (test) "
        f"(see lightcls-data check data.root={root})"
    )
    messages = [r.getMessage() for r in caplog.records]
    assert len(leaks) == 3  # the first three, then a count, not one line per leaked image
    assert re.fullmatch(
        r"and \d+ more images in more than one split", messages[messages.index(leaks[-1]) + 1]
    )


def test_validation_is_cached_between_runs(digits_root: Path, tmp_path: Path) -> None:
    cfg = compose_train([f"data.root={digits_root}"], tmp_path / "run")
    instantiate(cfg.data).prepare_data()
    cache = json.loads((digits_root / CACHE_FILE).read_text())
    assert len(cache) == 1797
    assert check_dataset(digits_root).read == 0


def test_unknown_policy_is_one_line(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    cfg = compose_train([*SMALL, f"data.root={root}", "data.on_broken=ignore"], tmp_path / "run")
    with pytest.raises(Exception, match=r"^data\.on_broken must be one of fail, skip, got 'ignore'$"):
        train(cfg)
