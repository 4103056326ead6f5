"""The confusion-matrix figure: readable for a few classes, bounded for many."""

from __future__ import annotations

from pathlib import Path

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
