"""The dataset doctor on broken data sets built in tmp_path, through the real `lightcls-data` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightcls.data.check import CACHE_FILE, check_dataset
from lightcls.data.images import load_image
from lightcls.errors import LightclsError
from lightcls_cli import run_data


def _unique(root: Path) -> Path:
    """Give every image of `root` its own content (the shared fixture repeats images across splits)."""
    rng = np.random.default_rng(0)
    for path in sorted(root.rglob("*.png")):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    return root


def test_truncated_jpeg_leak_and_duplicates_are_reported(make_split_folder, tmp_path: Path) -> None:
    root = _unique(make_split_folder())
    broken = root / "training_set" / "rock" / "broken.jpg"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(broken)
    broken.write_bytes(broken.read_bytes()[:200])  # truncated
    (root / "training_set" / "rock" / ".DS_Store").write_bytes(b"\0\1junk")  # ignored
    leaked = root / "val_set" / "paper" / "paper00.png"
    leaked.write_bytes((root / "training_set" / "paper" / "paper00.png").read_bytes())
    dup = root / "training_set" / "scissors" / "copy.png"
    dup.write_bytes((root / "training_set" / "scissors" / "scissors01.png").read_bytes())

    result = run_data(["check", f"data.root={root}"], cwd=tmp_path)

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


def test_clean_set_passes_and_second_check_reads_nothing(make_split_folder, tmp_path: Path) -> None:
    root = _unique(make_split_folder())
    first = check_dataset(root)
    assert first.ok and first.read == 24 and (root / CACHE_FILE).is_file()
    again = check_dataset(root)
    assert again.ok and again.read == 0
    touched = root / "val_set" / "rock" / "rock00.png"
    touched.write_bytes(b"not an image any more")
    third = check_dataset(root)
    assert third.read == 1
    assert third.errors == [f"{touched}: cannot decode image (cannot identify image file {str(touched)!r})"]


def test_empty_val_and_imbalance_warn(make_split_folder, tmp_path: Path) -> None:
    root = _unique(make_split_folder(per_class={"training_set": 2}))
    for i in range(30):
        Image.new("L", (8, 8), i).save(root / "training_set" / "rock" / f"more{i}.png")
    report = check_dataset(root)
    assert report.ok
    assert report.warnings == [
        "no val split: training runs without validation and keeps last.ckpt only",
        "imbalanced training split: 32 images in the largest class, 2 in paper, scissors",
    ]


def test_missing_class_folder_is_an_error_line(make_split_folder, tmp_path: Path) -> None:
    root = make_split_folder()
    (root / "training_set" / "lizard").mkdir()
    Image.new("L", (8, 8)).save(root / "training_set" / "lizard" / "a.png")
    result = run_data(["check", f"data.root={root}"], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {root / 'training_set' / 'lizard'}: folder is not a class named in {root / 'classes.txt'} "
        "(classes: paper, rock, scissors)"
    )


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 10000)).save(bomb)  # 200M pixels in a few kB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(LightclsError, match=r"bomb\.png: refused: Image size \(200000000 pixels\) exceeds"):
        load_image(bomb, 3)
    with pytest.raises(
        LightclsError, match=r"a decompression bomb\? the limit is Pillow's Image\.MAX_IMAGE_PIXELS"
    ):
        load_image(bomb, 3)


def _odd(folder: Path) -> dict[str, tuple[Path, int, tuple[int, ...]]]:
    """Odd but valid files: path, channels, and the pixel expected at (row 0, col 0) after decoding."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    gif = folder / "anim.gif"
    frames = [Image.new("P", (8, 8), i) for i in (1, 2)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    made["gif first frame"] = (gif, 3, (255, 0, 0))
    cmyk = folder / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk, quality=100)  # red in CMYK
    made["cmyk jpeg"] = (cmyk, 3, (255, 0, 0))
    deep = folder / "deep.png"
    Image.fromarray(np.full((8, 8), 65535 // 2, dtype=np.uint16)).save(deep)
    made["16-bit png"] = (deep, 1, (128,))
    pal = folder / "palette.png"
    p = Image.new("P", (8, 8), 2)
    p.putpalette([0, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 759)
    p.save(pal)
    made["palette png"] = (pal, 3, (0, 255, 0))
    rgba = folder / "rgba.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(rgba)
    made["rgba flattened on white"] = (rgba, 3, (255, 255, 255))
    rotated = folder / "rotated 中文 path.jpg"
    img = Image.new("RGB", (16, 8), (0, 0, 255))
    img.paste((255, 255, 255), (0, 0, 8, 8))  # white left half when stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display: the white half ends up on top
    img.save(rotated, exif=exif, quality=100)
    made["exif rotated, spaces and chinese in path"] = (rotated, 3, (255, 255, 255))
    return made


@pytest.mark.parametrize(
    "kind",
    [
        "gif first frame",
        "cmyk jpeg",
        "16-bit png",
        "palette png",
        "rgba flattened on white",
        "exif rotated, spaces and chinese in path",
    ],
)
def test_odd_formats_decode_right(tmp_path: Path, kind: str) -> None:
    path, channels, pixel = _odd(tmp_path / "odd dir 图片")[kind]
    image = load_image(path, channels)
    got = tuple(int(v) for v in image[:, 0, 0])
    assert all(abs(a - b) <= 3 for a, b in zip(got, pixel, strict=True)), (kind, got)
    if "rotated" in kind:
        assert tuple(image.shape[1:]) == (16, 8)  # portrait after EXIF rotation
        assert tuple(int(v) for v in image[:, 15, 0]) == pytest.approx((0, 0, 255), abs=3)


def test_a_mistyped_argument_is_one_line_naming_the_key(tmp_path: Path) -> None:
    from lightcls.cli_data import check

    with pytest.raises(LightclsError) as err:
        check([f"data.root={tmp_path}", "data.val_fraction=abc"])
    assert str(err.value).startswith(
        "data.val_fraction: Value 'abc' of type 'str' could not be converted to Float; "
        "usage: lightcls-data check"
    )


def test_many_images_are_checked_in_several_processes_with_the_same_report(
    make_split_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightcls.data.check as check_module

    root = make_split_folder()
    _unique(root)
    broken = root / "val_set" / "rock" / "broken.png"
    broken.write_bytes(b"not a png")
    serial = check_dataset(root, cache=False)
    monkeypatch.setattr(check_module, "PARALLEL_FROM", 2)  # the real pool, on a small set
    parallel = check_dataset(root, cache=False)
    assert parallel.files == serial.files and parallel.errors == serial.errors
    assert parallel.read == len(parallel.files) and len(parallel.errors) == 1
    assert parallel.errors[0].startswith(f"{broken}: cannot decode image")
