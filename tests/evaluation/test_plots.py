"""The confusion-matrix figure: readable for a few classes, bounded for many."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightcls.evaluation.plots import confusion_matrix_picture, line_chart_svg, plot_confusion_matrix


def _darkness(picture: Image.Image, box: tuple[int, int, int, int]) -> float:
    """How dark a cell's middle is: 0 white, 255 black (its number's pixels left out)."""
    left, upper, right, lower = box
    patch = picture.convert("L").crop((left + 1, upper + 1, left + 4, upper + 4))  # a corner, off the text
    return 255 - float(np.asarray(patch).mean())


def test_a_few_classes_are_shaded_by_count_and_named(tmp_path: Path) -> None:
    picture, boxes = confusion_matrix_picture([[3, 1], [0, 4]], ["cat", "dog"])
    assert _darkness(picture, boxes[1][1]) > _darkness(picture, boxes[0][0]) > _darkness(picture, boxes[0][1])
    assert _darkness(picture, boxes[1][0]) < 10  # no dog taken for a cat: white
    left, upper, _, lower = boxes[0][0]
    names = picture.convert("L").crop((0, upper, left - 2, lower))  # "cat" left of its row
    assert np.asarray(names).min() < 100
    numbers = picture.convert("L").crop(boxes[0][1])  # "1" written in its light cell
    assert np.asarray(numbers).min() < 100
    path = plot_confusion_matrix([[3, 1], [0, 4]], ["cat", "dog"], tmp_path / "matrix.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_hundreds_of_classes_make_a_bounded_picture(tmp_path: Path) -> None:
    n = 300
    matrix = [[5 if i == j else int((i * 7 + j) % 97 == 0) for j in range(n)] for i in range(n)]
    path = plot_confusion_matrix(matrix, [f"class {i}" for i in range(n)], tmp_path / "matrix.png")
    with Image.open(path) as image:  # 0.45 in a class would be 27,000 x 13,700 px
        assert image.height <= 2400 and image.width <= 5000


def test_a_line_chart_is_an_svg_with_a_line_per_label_and_round_ticks() -> None:
    svg = line_chart_svg({"train/loss": [(0, 2.3), (10, 0.4)], "val/<loss>": [(10, 0.5)]}, "loss", "step")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "val/&lt;loss&gt;" in svg
    assert ">0.5<" in svg and ">2.5<" in svg and ">10<" in svg  # ticks every 0.5 up to 2.5; x to 10


CJK = ["石头", "剪刀", "布"]  # rock, scissors, paper: an MMEdu class's names


def test_chinese_class_names_are_drawn_with_an_installed_cjk_font(tmp_path: Path, recwarn) -> None:
    from lightcls.evaluation import fonts

    if fonts.cjk_font() is None:
        pytest.skip("no CJK font installed: apt-get install fonts-wqy-zenhei (make install-browser)")
    plot_confusion_matrix([[2, 0, 0], [0, 2, 0], [1, 0, 1]], CJK, tmp_path / "matrix.png")
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
    font = fonts.caption_font(12)  # the gallery's and explain's captions
    assert font.path == fonts.cjk_font()[1] and font.getbbox("石头")[2] > 12  # two glyphs, not empty boxes


def test_without_a_cjk_font_missing_glyphs_are_one_log_line(
    tmp_path: Path, monkeypatch, caplog, recwarn
) -> None:
    import logging

    from lightcls.evaluation import fonts

    monkeypatch.setattr(fonts, "cjk_font", lambda: None)
    with caplog.at_level(logging.WARNING):
        plot_confusion_matrix([[2, 0, 0], [0, 2, 0], [1, 0, 1]], CJK, tmp_path / "matrix.png")
    assert not [w for w in recwarn if "missing from font" in str(w.message)]  # not one per character
    (line,) = [r.getMessage() for r in caplog.records if r.name == "lightcls.evaluation.fonts"]
    assert line.startswith("some class names show as boxes in the figures: no installed font has their")


def test_a_cjk_font_installed_after_matplotlibs_font_cache_is_found(monkeypatch) -> None:
    from matplotlib import font_manager

    from lightcls.evaluation import fonts

    fonts.cjk_font.cache_clear()
    installed = fonts.cjk_font()
    if installed is None:
        pytest.skip("no CJK font installed: apt-get install fonts-wqy-zenhei (make install-browser)")
    # matplotlib's cached list as it was before the font was installed: without that font's file
    stale = [f for f in font_manager.fontManager.ttflist if f.fname != installed[1]]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)
    fonts.cjk_font.cache_clear()
    try:
        assert fonts.cjk_font() == installed
    finally:
        fonts.cjk_font.cache_clear()
