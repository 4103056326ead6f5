"""Shared fixtures: real data on disk, real Hydra composition, one small trained run per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lightcls.config import config_dir, register_resolvers
from lightcls.data.digits import write_digits

REPO = Path(__file__).resolve().parents[1]
#: Overrides for a one-epoch run of 3 train and 2 val batches.
TINY_RUN = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=2"]
register_resolvers()


def compose_train(overrides: list[str], run_dir: Path | None = None) -> DictConfig:
    """The train config as `python train.py OVERRIDES` composes it, writing into `run_dir`."""
    extra = [f"paths.output_dir={run_dir}"] if run_dir is not None else []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[*overrides, *extra])


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` (the repo's real entry point) in `cwd`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
    """Build a tiny split-folder data set of solid-colour PNGs: classes x images per split."""
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
        for split, n in counts.items():
            for label, name in enumerate(classes):
                folder = root / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    shade = 40 + 80 * label + i
                    colour = shade if mode == "L" else (shade, 255 - shade, i * 10)
                    Image.new(mode, (size, size), colour).save(folder / f"{name}{i:02d}.png")
        if classes_txt:
            (root / "classes.txt").write_text("\n".join(classes) + "\n")
        return root

    return make
