"""The confusion-matrix figure: readable for a few classes, bounded for many."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lightcls.evaluation.plots import confusion_matrix_figure, plot_confusion_matrix


def test_a_few_classes_are_named_and_counted_in_their_cells() -> None:
    fig = confusion_matrix_figure([[3, 1], [0, 4]], ["cat", "dog"])
    counts = fig.axes[0]
    assert [t.get_text() for t in counts.get_xticklabels()] == ["cat", "dog"]
    assert [t.get_text() for t in counts.texts] == ["3", "1", "0", "4"]


def test_hundreds_of_classes_make_a_bounded_picture(tmp_path: Path) -> None:
    n = 300
    matrix = [[5 if i == j else int((i * 7 + j) % 97 == 0) for j in range(n)] for i in range(n)]
    path = plot_confusion_matrix(matrix, [f"class {i}" for i in range(n)], tmp_path / "matrix.png")
    with Image.open(path) as image:  # 0.45 in a class would be 27,000 x 13,700 px
        assert image.height <= 2400 and image.width <= 5000
    fig = confusion_matrix_figure(matrix, [f"class {i}" for i in range(n)])
    assert fig.axes[0].get_title() == "counts, 300 classes" and not fig.axes[0].texts


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
