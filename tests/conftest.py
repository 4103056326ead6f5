"""Shared fixtures: real data on disk (no image repeated across splits), one small trained run a session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import compose_train
from lightcls.data.digits import write_digits


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's digits written once in the split-folder layout."""
    return write_digits(tmp_path_factory.mktemp("data") / "digits")


@pytest.fixture(scope="session")
def trained_run(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir of lenet trained 3 epochs on digits (checkpoints, metrics.json, tensorboard)."""
    from lightcls.tasks import train

    run_dir = tmp_path_factory.mktemp("trained_run")
    cfg = compose_train(
        [f"data.root={digits_root}", "trainer.max_epochs=3", "trainer=cpu", "seed=0"], run_dir
    )
    train(cfg)
    assert json.loads((run_dir / "metrics.json").read_text())["best_val_top1"] > 0.5
    return run_dir


@pytest.fixture
def make_split_folder(tmp_path: Path) -> Callable[..., Path]:
    """Build a tiny split-folder data set: one grey level (or colour) per class, and two marker pixels that
    make every image unique, so no image is in two splits (a leak) or twice in one (a duplicate)."""
    from PIL import Image

    def make(
        classes: tuple[str, ...] = ("paper", "rock", "scissors"),
        per_class: dict[str, int] | None = None,
        classes_txt: bool = True,
        size: int = 16,
        mode: str = "L",
    ) -> Path:
        root = tmp_path / "hand_gray"
        counts = per_class or {"training_set": 4, "val_set": 2, "test_set": 2}
        for s, (split, n) in enumerate(counts.items()):
            for label, name in enumerate(classes):
                folder = root / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    shade = 40 + 80 * label
                    img = Image.new(mode, (size, size), shade if mode == "L" else (shade, 255 - shade, 90))
                    marker = s * 1000 + i
                    for x, value in enumerate((marker % 256, marker // 256)):
                        img.putpixel((x, 0), value if mode == "L" else (value,) * 3)
                    img.save(folder / f"{name}{i:02d}.png")
        if classes_txt:
            (root / "classes.txt").write_text("\n".join(classes) + "\n")
        return root

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long (slow-marked) runs first: the two xdist workers then end together on short tests instead
    of one waiting alone on the notebook."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
