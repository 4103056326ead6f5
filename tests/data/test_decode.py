"""Decoding images: every format Pillow reads, EXIF rotation, 16-bit, bombs and broken files refused."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightcls.data.decode import decode_bytes, load_image
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError


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


def test_load_image_applies_exif_rotation_and_scales_16_bit(tmp_path: Path) -> None:
    wide = Image.new("L", (8, 4), 200)
    exif = wide.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    wide.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg", 1).shape == (1, 8, 4)
    Image.fromarray(np.full((3, 3), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png", 3).unique().tolist() == [255]


def test_an_undecodable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(LightclsError, match=rf"^{bad}: cannot decode image"):
        load_image(bad, 1)


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


def test_a_large_jpeg_decodes_at_reduced_scale_with_the_same_picture(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:600, 0:800]
    photo = np.stack([xx * 255 // 800, yy * 255 // 600, (xx + yy) * 255 // 1400], -1).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(photo).save(tmp_path / "big.png")
    full = load_image(tmp_path / "big.jpg", 3)
    small = load_image(tmp_path / "big.jpg", 3, min_side=64)
    assert full.shape == (3, 600, 800) and small.shape == (3, 75, 100)  # 1/8: the short side stays >= 64
    assert load_image(tmp_path / "big.jpg", 3, min_side=128).shape == (3, 150, 200)  # 1/4
    assert load_image(tmp_path / "big.jpg", 3, min_side=224).shape == (3, 300, 400)  # 1/2
    assert load_image(tmp_path / "big.jpg", 3, min_side=400).shape == (3, 600, 800)  # < 2x: as stored
    assert load_image(tmp_path / "big.png", 3, min_side=64).shape == (3, 600, 800)  # only JPEG
    resize = Preprocess(64, 3, (0.5,) * 3, (0.5,) * 3).resize()
    difference = (resize(full).float() - resize(small).float()).abs()
    assert difference.mean() < 1.0 and difference.max() <= 8  # what the model sees: the same picture


def test_decode_bytes_matches_pillow_and_names_what_it_cannot_decode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (256, 341, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    jpeg = out.getvalue()
    assert torch.equal(decode_bytes(jpeg, 3, 224, "a.jpg"), load_image(io.BytesIO(jpeg), 3, 224))
    grey = decode_bytes(jpeg, 1, 224, "a.jpg").float() - load_image(io.BytesIO(jpeg), 1, 224).float()
    assert grey.abs().mean() < 0.5 and grey.shape == (1, 256, 341)
    assert decode_bytes(jpeg, 3, 64, "a.jpg").shape == (3, 128, 171)  # 4x the input: Pillow's 1/2 scale
    with pytest.raises(LightclsError, match=r"^shard-000001.tar@1536: cannot decode image"):
        decode_bytes(jpeg[:2] + b"not a jpeg at all", 3, 224, "shard-000001.tar@1536")
