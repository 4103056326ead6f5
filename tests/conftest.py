"""Shared fixtures: real data on disk (no image repeated across splits), one small trained run a session."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from helpers import compose_train
from lightcls.data.digits import write_digits


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker, and every process its tests start, computes on its share of the cores: two
    workers of two threads each on two cores oversubscribe them and run several times slower."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every xdist worker of this session sees (the session's own base dir without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def once(shared: Path, name: str, build: Callable[[Path], None]) -> Path:
    """`shared/name`, made by `build` once a session: the first worker builds it, the others wait for it."""
    target = shared / name
    with FileLock(shared / f"{name}.lock"):
        done = shared / f"{name}.done"
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


@pytest.fixture(scope="session")
def digits_root(shared_dir: Path) -> Path:
    """scikit-learn's digits written once in the split-folder layout."""
    return once(shared_dir, "digits", write_digits)


@pytest.fixture(scope="session")
def trained_run(digits_root: Path, shared_dir: Path) -> Path:
    """A run dir of lenet trained 3 epochs on digits (checkpoints, metrics.json, tensorboard): tests copy
    what they change."""

    def build(run_dir: Path) -> None:
        from lightcls.tasks import train

        overrides = [f"data.root={digits_root}", "trainer.max_epochs=3", "trainer=cpu", "seed=0"]
        overrides.append("logger=tensorboard")  # the default run's logger: tests read its events
        train(compose_train(overrides, run_dir))
        assert json.loads((run_dir / "metrics.json").read_text())["best_val_top1"] > 0.5

    return once(shared_dir, "trained_run", build)


@pytest.fixture(scope="session")
def exported_onnx(trained_run: Path, shared_dir: Path) -> Path:
    """The session run's last.ckpt exported to ONNX (model.onnx beside its model.json): tests copy what
    they change."""

    def build(out: Path) -> None:
        from helpers import compose_task, quoted
        from lightcls.tasks import export

        export(
            compose_task("export", [f"ckpt_path={quoted(trained_run / 'checkpoints' / 'last.ckpt')}"], out)
        )

    return once(shared_dir, "exported_onnx", build) / "model.onnx"


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


CHROMIUM, CHROMEDRIVER = (
    shutil.which("chromium") or shutil.which("chromium-browser"),
    shutil.which("chromedriver"),
)


@pytest.fixture
def browser():
    """Headless Chromium through Selenium; every host name but 127.0.0.1 unresolvable (nothing may leave
    the machine)."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium and chromedriver are not installed: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
