"""Test helpers: compose configs as the commands do, and run the commands the way a user does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig
from PIL import Image

from lightcls.config import compose
from lightcls.errors import LightclsError

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
#: the debug/ option the tests' short runs use: one epoch of 3 train and 2 val batches
TINY = "debug=limit"
#: a small, quiet CPU training run on a tiny folder data set (add data.root=...)
SMALL_TRAIN = ["data=folder", "data.image_size=16", "data.num_workers=0", "trainer=cpu", "logger=none"]
#: the tasks whose runs end with report.html (on by default)
REPORTING = ("train", "search", "eval", "evaluate")
#: the configs that train (a logger group)
TRAINING = ("train", "search")


def no_report(overrides: list[str]) -> list[str]:
    """`overrides` with the end-of-run report.html off, unless they say: each test run would pay for it
    (a second or two), and tests/tasks/test_report.py and the default-run tests check it."""
    given = any(o.lstrip("+~").startswith("report=") for o in overrides)
    return list(overrides) if given else [*overrides, "report=false"]


def compose_task(
    name: str, overrides: list[str], run_dir: Path | None = None, report: bool = False
) -> DictConfig:
    """The `name` config as its command composes it, writing into `run_dir` (report.html off unless
    `report` or the overrides say; without the page, whose curves it keeps, a training run's TensorBoard
    logger is off too unless the overrides choose one: about half a second a run)."""
    extra = [f"paths.output_dir={quoted(run_dir)}"] if run_dir is not None else []
    if name in REPORTING and not report:
        overrides = no_report(overrides)
    page = report or "report=true" in overrides
    if name in TRAINING and not page and not any(o.lstrip("+~").startswith("logger") for o in overrides):
        overrides = [*overrides, "logger=none"]
    return compose(name, [*overrides, *extra])


def compose_train(overrides: list[str], run_dir: Path | None = None, report: bool = False) -> DictConfig:
    """The train config as `python train.py OVERRIDES` composes it, writing into `run_dir`."""
    return compose_task("train", overrides, run_dir, report)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HYDRA_FULL_ERROR": "0",
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }


def run_cli(
    args: list[str], cwd: Path, timeout: float = 300, report: bool = False
) -> subprocess.CompletedProcess:
    """`python train.py ARGS` (the repo's real entry point) in `cwd` (report.html off unless `report`)."""
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *(args if report else no_report(args))],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, launcher: list[str] = ()
) -> subprocess.Popen:
    """`python [launcher] train.py ARGS` started in the background with `env` added (`.communicate()`),
    report.html off."""
    return subprocess.Popen(
        [sys.executable, *launcher, str(REPO / "train.py"), *no_report(args)],
        cwd=cwd,
        env={**_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port() -> int:
    """A TCP port nothing listens on now (for a process group's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_entry(entry: str, args: list[str], cwd: Path) -> subprocess.Popen:
    """`lightcls-<entry> ARGS` (the `lightcls.cli.main.<entry>` Hydra main) started in the background in
    `cwd`, outputs kept there (wait with `.communicate()`)."""
    return subprocess.Popen(
        _entry_command(entry, args, cwd),
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _entry_command(entry: str, args: list[str], cwd: Path) -> list[str]:
    if not any(a.startswith("paths.outputs_root=") for a in args):
        args = [*args, f"paths.outputs_root={cwd / 'outputs'}"]
    if entry in REPORTING:
        args = no_report(args)
    return [sys.executable, "-c", f"from lightcls.cli.main import {entry}; {entry}()", *args]


def refused_in_process(
    entry: str, args: list[str], capsys: pytest.CaptureFixture
) -> subprocess.CompletedProcess:
    """`lightcls-<entry> ARGS` run in this process, for a mistake its checks refuse before Hydra runs
    anything (no run dir, no task): the exit code and output a user sees, as a subprocess would give them."""
    from unittest import mock

    from lightcls.cli import main

    def too_far(*_: object, **__: object) -> None:
        raise AssertionError(f"lightcls-{entry} {' '.join(args)}: its checks passed, Hydra would run it")

    capsys.readouterr()
    with (
        mock.patch.object(sys, "argv", [f"lightcls-{entry}", *args]),
        mock.patch.object(sys.modules["hydra.main"], "_run_hydra", too_far),
        pytest.raises(SystemExit) as stop,
    ):
        getattr(main, entry)()
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([entry, *args], stop.value.code, out, err)


def hydra_argv(entry: str, args: list[str]) -> list[str]:
    """The command line `lightcls-<entry> ARGS` hands to Hydra once its checks pass, with the run dir it
    chose (`hydra.run.dir=...`), found in this process: Hydra itself does not run."""
    from unittest import mock

    from lightcls.cli import main

    class Handed(Exception):
        pass

    def hand(*_: object, **__: object) -> None:
        raise Handed(list(sys.argv[1:]))

    with (
        mock.patch.object(sys, "argv", [f"lightcls-{entry}", *args]),
        mock.patch.object(sys.modules["hydra.main"], "_run_hydra", hand),
        pytest.raises(Handed) as handed,
    ):
        getattr(main, entry)()
    return handed.value.args[0]


def run_data(
    args: list[str], cwd: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess:
    """`lightcls-data ARGS` (the function behind the console script) run in this process from `cwd`: its
    exit code and output, as a subprocess would give them."""
    from lightcls.cli.data import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["lightcls-data", *args], code, out, err)


def assert_refused(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit code 2 and `error: message` as stderr's last line, with no traceback."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"


def one_line_error(call, *args, **kwargs) -> str:
    """The message of the LightclsError `call(*args, **kwargs)` raises, checked to be one line."""
    with pytest.raises(LightclsError) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


#: class folders and image counts of `make_classes`
COUNTS = {"bird": 7, "cat": 20, "dog": 10}


def make_classes(root: Path, counts: dict[str, int] | None = None) -> Path:
    """A plain tree of class folders: distinct random 8x8 PNGs, plus files the split must ignore."""
    rng = np.random.default_rng(0)
    for name, n in (counts or COUNTS).items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                root / name / f"{i:02d}.png"
            )
        (root / name / ".DS_Store").write_bytes(b"\0junk")
        (root / name / "notes.txt").write_text("not an image")
    return root


def quoted(path: Path | str) -> str:
    """A path as a Hydra override value (checkpoint names hold '=')."""
    return f'"{path}"'
