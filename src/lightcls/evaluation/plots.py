"""Evaluation figures: the confusion matrix, counts and row-normalised side by side (Pillow); a multi-label
model's precision-recall curves (matplotlib)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from lightcls.evaluation.fonts import caption_font, figure_fonts, warn_missing_glyphs
from lightcls.files import PNG

#: up to this many classes the axes name them; beyond, the labels' numbers
NAMED = 80
#: up to this many classes the cells show their values
NUMBERED = 30


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path | IO[bytes]
) -> Path | IO[bytes]:
    """Save the confusion matrix as a PNG (a file, or a binary buffer): counts on the left, row-normalised
    (recall) on the right."""
    picture, _ = confusion_matrix_picture(matrix, classes)
    picture.save(path, **PNG)
    return path


def confusion_matrix_picture(
    matrix: Sequence[Sequence[int]], classes: Sequence[str]
) -> tuple[Image.Image, list[list[tuple[int, int, int, int]]]]:
    """The confusion matrix drawn with Pillow, and each counts cell's box (row: true class): shaded by
    value (matplotlib's Blues), values in the cells up to 30 classes, names on the axes up to 80.

    Drawn by hand: matplotlib took 0.5 s for ten classes on a 2-core CPU, half the end-of-run report's budget.
    """
    counts = torch.tensor(matrix, dtype=torch.float64).reshape(len(classes), len(classes))
    recall = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    n = len(classes)
    cell = max(2, min(48, 900 // max(n, 1)))
    named, numbered = n <= NAMED, n <= NUMBERED
    warn_missing_glyphs(classes if named else [])
    font = caption_font(max(9, min(14, int(cell * 0.6)))) if named else caption_font(12)
    small = caption_font(max(8, min(13, int(cell * 0.32))))
    title_font = caption_font(15)
    names = [_fit(str(c), font, 180) for c in classes] if named else []
    name_width = int(max((font.getlength(c) for c in names), default=0)) + 8 if named else 0
    side = cell * n
    margin = (34 + name_width, 36, 30, 44 + name_width)  # left, top, right, bottom
    bar = 14
    panel = margin[0] + side + 12 + bar + 40
    canvas = Image.new("RGB", (2 * panel + margin[2], margin[1] + side + margin[3]), "white")
    draw = ImageDraw.Draw(canvas)
    boxes: list[list[tuple[int, int, int, int]]] = []
    for k, (values, title, fmt) in enumerate(
        ((counts, "counts", "{:.0f}"), (recall, "row-normalised (recall)", "{:.2f}"))
    ):
        x0, y0 = k * panel + margin[0], margin[1]
        top = float(values.max()) if values.numel() else 0.0
        shades = _blues(values / top if top > 0 else values)
        canvas.paste(Image.fromarray(shades).resize((side, side), Image.Resampling.NEAREST), (x0, y0))
        draw.rectangle((x0 - 1, y0 - 1, x0 + side, y0 + side), outline=(80, 80, 80))
        cells = [
            [(x0 + j * cell, y0 + i * cell, x0 + (j + 1) * cell, y0 + (i + 1) * cell) for j in range(n)]
            for i in range(n)
        ]
        if k == 0:
            boxes = cells
        if numbered:
            for i in range(n):
                for j in range(n):
                    value = float(values[i, j])
                    colour = "white" if top > 0 and value > top / 2 else "black"
                    left, upper, right, lower = cells[i][j]
                    centre = ((left + right) / 2, (upper + lower) / 2)
                    draw.text(centre, fmt.format(value), fill=colour, font=small, anchor="mm")
        label = title if named else f"{title}, {n} classes"
        draw.text((x0 + side / 2, y0 - 10), label, fill="black", font=title_font, anchor="ms")
        for i, name in enumerate(names):  # true classes down the left, predicted along the bottom
            draw.text((x0 - 6, y0 + (i + 0.5) * cell), name, fill="black", font=font, anchor="rm")
            _vertical(canvas, name, font, (x0 + (i + 0.5) * cell, y0 + side + 4), "top")
        axis = "true" if named else "true label"
        _vertical(canvas, axis, font, (k * panel + 14, y0 + side / 2), "middle")
        below = y0 + side + 8 + name_width
        draw.text(
            (x0 + side / 2, below),
            "predicted" if named else "predicted label",
            fill="black",
            font=font,
            anchor="ma",
        )
        bx = x0 + side + 12  # the colour bar: its top is the panel's largest value
        ramp = _blues(torch.linspace(1, 0, max(side, 2), dtype=torch.float64)[:, None].expand(-1, 1))
        canvas.paste(Image.fromarray(ramp).resize((bar, side), Image.Resampling.NEAREST), (bx, y0))
        draw.rectangle((bx - 1, y0 - 1, bx + bar, y0 + side), outline=(80, 80, 80))
        draw.text((bx + bar + 4, y0), fmt.format(top), fill="black", font=small, anchor="lt")
        draw.text((bx + bar + 4, y0 + side), fmt.format(0), fill="black", font=small, anchor="lb")
    return canvas, boxes


def _vertical(canvas: Image.Image, text: str, font: Any, at: tuple[float, float], align: str) -> None:
    """Black `text` read bottom to top, centred on `at`'s x; its end at `at`'s y ("top") or its middle."""
    width, height = int(font.getlength(text)) + 4, int(font.size * 1.4) + 2
    tag = Image.new("L", (width, height), 0)
    ImageDraw.Draw(tag).text((width - 2, height / 2), text, fill=255, font=font, anchor="rm")
    tag = tag.rotate(90, expand=True)  # now height x width: the text's end at the top
    top = at[1] if align == "top" else at[1] - tag.height / 2
    canvas.paste((0, 0, 0), (int(at[0] - tag.width / 2), int(top)), tag)


def _blues(values: torch.Tensor) -> np.ndarray:
    """uint8 RGB of matplotlib's Blues colour map for values in [0, 1]."""
    from matplotlib import colormaps

    return (colormaps["Blues"](values.clamp(0, 1).numpy())[..., :3] * 255).astype(np.uint8)


def _fit(text: str, font: Any, width: int) -> str:
    """`text`, cut with an ellipsis to `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def plot_pr_curves(probs: torch.Tensor, target: torch.Tensor, classes: Sequence[str], path: Path) -> Path:
    """Save each class's precision-recall curve (a multi-label model's scores; AP in the legend) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.functional.classification import multilabel_precision_recall_curve

    from lightcls.evaluation.metrics import average_precisions

    n = len(classes)
    precision, recall, _ = multilabel_precision_recall_curve(probs.float(), target.long(), n)
    aps = average_precisions(probs, target)
    with figure_fonts():
        fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
        for i in range(n):
            if aps[i] is None:  # no positive image: no curve
                continue
            ax.plot(
                recall[i].numpy(),
                precision[i].numpy(),
                label=f"{classes[i]} (AP {aps[i]:.3f})" if n <= 20 else None,
            )
        ax.set(
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
            title="precision-recall per class",
        )
        if n <= 20:
            ax.legend(fontsize=7, loc="lower left")
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


#: the line colours of a chart (matplotlib's tab10)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def line_chart_svg(
    lines: dict[str, Sequence[tuple[float, float]]],
    title: str,
    x_label: str,
    size: tuple[int, int] = (540, 290),
) -> str:
    """A line chart as a self-contained SVG document: one line per label, its points as dots up to 60 of
    them, axes with round ticks, a legend. Written by hand for the report page: matplotlib took 0.1 s a chart
    on a 2-core CPU, and a page has three or four."""
    width, height = size
    left, right, top, bottom = 58, 12, 28, 40
    points = [p for line in lines.values() for p in line]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_ticks, y_ticks = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / ((x1 - x0) or 1) * (width - left - right)
        py = height - bottom - (y - y0) / ((y1 - y0) or 1) * (height - top - bottom)
        return round(px, 1), round(py, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="17" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    for tick in x_ticks:
        px, _ = at(tick, y0)
        parts.append(f'<line x1="{px}" y1="{top}" x2="{px}" y2="{height - bottom}" stroke="#eee"/>')
        parts.append(f'<text x="{px}" y="{height - bottom + 14}" text-anchor="middle">{_tick(tick)}</text>')
    for tick in y_ticks:
        _, py = at(x0, tick)
        parts.append(f'<line x1="{left}" y1="{py}" x2="{width - right}" y2="{py}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 5}" y="{py + 4}" text-anchor="end">{_tick(tick)}</text>')
    parts.append(
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        'fill="none" stroke="#555"/>'
    )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    legend_x = width - right - 8 - 7 * max(len(name) for name in lines) - 22  # on the right, over a white box
    ends = [at(*line[-1])[1] for line in lines.values() if line]  # rising lines end high: the legend goes low
    high = sum(ends) / len(ends) < (top + height - bottom) / 2
    legend_y = height - bottom - 15 * len(lines) - 10 if high else top
    legend = [
        f'<rect x="{legend_x - 5}" y="{legend_y + 3}" width="{width - right - legend_x}" '
        f'height="{15 * len(lines) + 4}" fill="white" fill-opacity="0.85" stroke="#ccc"/>'
    ]
    for k, (label, line) in enumerate(lines.items()):
        colour = PALETTE[k % len(PALETTE)]
        coords = [at(x, y) for x, y in line]
        path = " ".join(f"{px},{py}" for px, py in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        if len(coords) <= 60:
            parts += [f'<circle cx="{px}" cy="{py}" r="2.4" fill="{colour}"/>' for px, py in coords]
        ly = legend_y + 16 + 15 * k
        legend.append(
            f'<line x1="{legend_x}" y1="{ly - 4}" x2="{legend_x + 16}" y2="{ly - 4}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        legend.append(f'<text x="{legend_x + 20}" y="{ly}">{escape(label)}</text>')
    parts += legend
    parts.append("</svg>")
    return "\n".join(parts)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    if high <= low:
        low, high = low - (abs(low) or 1) * 0.5, high + (abs(high) or 1) * 0.5
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high - 1e-12 * abs(high):
        ticks.append(first + len(ticks) * step)
    return ticks


def _tick(value: float) -> str:
    return f"{value:.6g}"
