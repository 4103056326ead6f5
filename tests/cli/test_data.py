"""lightcls-data as a user runs it (its entry point, in-process): check and split, mistakes in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from helpers import make_classes, run_data
from lightcls.data import read_layout
from lightcls.errors import LightclsError


def test_truncated_jpeg_leak_and_duplicates_are_reported(
    make_split_folder, tmp_path: Path, capsys, monkeypatch
) -> None:
    root = make_split_folder()
    broken = root / "training_set" / "rock" / "broken.jpg"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(broken)
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    (root / "training_set" / "rock" / ".DS_Store").write_bytes(b"\0\1junk")  # ignored
    leaked = root / "val_set" / "paper" / "paper00.png"
    leaked.write_bytes((root / "training_set" / "paper" / "paper00.png").read_bytes())
    dup = root / "training_set" / "scissors" / "copy.png"
    dup.write_bytes((root / "training_set" / "scissors" / "scissors01.png").read_bytes())

    result = run_data(["check", f"data.root={root}"], tmp_path, capsys, monkeypatch)

    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert f"error: {broken}: cannot decode image (" in out
    assert (
        f"error: leakage: the same image is in train and val: "
        f"{root / 'training_set/paper/paper00.png'} (train), {leaked} (val)"
    ) in out
    assert f"warning: duplicates in train: {root / 'training_set/scissors/copy.png'}" in out
    assert ".DS_Store" not in out
    assert "2 problem(s): training would be wrong" in out


def test_missing_class_folder_is_an_error_line(
    make_split_folder, tmp_path: Path, capsys, monkeypatch
) -> None:
    root = make_split_folder()
    (root / "training_set" / "lizard").mkdir()
    Image.new("L", (8, 8)).save(root / "training_set" / "lizard" / "a.png")
    result = run_data(["check", f"data.root={root}"], tmp_path, capsys, monkeypatch)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {root / 'training_set' / 'lizard'}: folder is not a class named in {root / 'classes.txt'} "
        "(classes: paper, rock, scissors)"
    )


def test_a_mistyped_argument_is_one_line_naming_the_key(tmp_path: Path) -> None:
    from lightcls.cli.data import check

    with pytest.raises(LightclsError) as err:
        check([f"data.root={tmp_path}", "data.val_fraction=abc"])
    assert str(err.value).startswith(
        "data.val_fraction: Value 'abc' of type 'str' could not be converted to Float; "
        "usage: lightcls-data check"
    )


def test_cli_writes_the_layout_and_refuses_a_bad_key_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    src = make_classes(tmp_path / "animals")
    result = run_data(
        ["split", f"SRC={src}", "DST=out", "val=0.2", "test=0.1", "seed=1", "mode=link"],
        tmp_path,
        capsys,
        monkeypatch,
    )
    assert result.returncode == 0, result.stderr
    assert "│ total │    26 │   7 │    4 │" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        f"wrote out from {src} (link, seed 1); check it: lightcls-data check data.root=out"
    )
    layout = read_layout(tmp_path / "out")
    assert layout.classes == ["bird", "cat", "dog"] and len(layout.splits["train"]) == 26

    bad = run_data(["split", f"SRC={src}", "DST=out2", "ratio=0.2"], tmp_path, capsys, monkeypatch)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "error: unknown argument 'ratio=0.2'; valid keys: SRC, DST, val, test, seed, mode"
    ]
    assert "Traceback" not in bad.stderr + bad.stdout and not (tmp_path / "out2").exists()

    again = run_data(["split", f"SRC={src}", "DST=out"], tmp_path, capsys, monkeypatch)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.splitlines() == [
        f"error: DST {(tmp_path / 'out').resolve()} exists and is not empty; "
        "refusing to overwrite it (give a new one)"
    ]

    usage = run_data([], tmp_path, capsys, monkeypatch)
    assert usage.returncode == 2
    assert (
        "lightcls-data check data.root=PATH" in usage.stderr and "lightcls-data split SRC=DIR" in usage.stderr
    )
