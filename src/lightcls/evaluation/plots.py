"""Evaluation figures (matplotlib): the confusion matrix, counts and row-normalised side by side; a
multi-label model's precision-recall curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lightcls.evaluation.fonts import figure_fonts

#: the figure's height at most (inches at 100 dpi): 1,000 classes would otherwise be a 90,000 px wide PNG
MAX_INCHES = 24.0
#: up to this many classes the axes name them; beyond, the labels' numbers
NAMED = 80


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> Path:
    """Save the confusion matrix as a PNG: counts on the left, row-normalised (recall) on the right."""
    import matplotlib.pyplot as plt

    with figure_fonts():
        fig = confusion_matrix_figure(matrix, classes)
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Any:
    """A matplotlib figure of the confusion matrix: counts and row-normalised (recall) side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = torch.tensor(matrix, dtype=torch.float64)
    rows = counts.sum(dim=1, keepdim=True).clamp(min=1)
    n = len(classes)
    side = min(max(4.0, 0.45 * n + 2), MAX_INCHES)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1, side), layout="constrained")
    for ax, values, title, fmt in (
        (axes[0], counts, "counts", "{:.0f}"),
        (axes[1], counts / rows, "row-normalised (recall)", "{:.2f}"),
    ):
        image = ax.imshow(values.numpy(), cmap="Blues", vmin=0, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8)
        if n <= NAMED:
            ax.set(title=title, xlabel="predicted", ylabel="true", xticks=range(n), yticks=range(n))
            ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=max(5, min(10, 600 // n)))
            ax.set_yticklabels(classes, fontsize=max(5, min(10, 600 // n)))
        else:  # names would overlap: classes in their label order, as in eval.json
            ax.set(title=f"{title}, {n} classes", xlabel="predicted label", ylabel="true label")
        if n <= 30:
            limit = float(values.max()) / 2 if values.numel() else 0
            for i in range(n):
                for j in range(n):
                    v = float(values[i, j])
                    ax.text(
                        j,
                        i,
                        fmt.format(v),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if v > limit else "black",
                    )
    return fig


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
