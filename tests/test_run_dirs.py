"""Run dirs: unique per run, the resumed run's own dir, and nothing extra from DDP ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_RUN, run_cli
from lightcls.config import forget_run_dirs, run_dir, unique_dir


def test_runs_started_in_the_same_second_get_their_own_dirs(tmp_path: Path) -> None:
    first = unique_dir(str(tmp_path))
    forget_run_dirs()
    second = unique_dir(str(tmp_path))
    forget_run_dirs()
    assert first != second and Path(first).is_dir() and Path(second).is_dir()
    if Path(first).name[:19] == Path(second).name[:19]:  # the same second
        assert Path(second).name == Path(first).name + "_1"


def test_resuming_a_run_continues_in_its_dir(tmp_path: Path) -> None:
    ckpt = tmp_path / "runs" / "2026-01-01_00-00-00" / "checkpoints" / "last.ckpt"
    assert run_dir(str(tmp_path / "runs"), str(ckpt)) == str(ckpt.parent.parent)
    forget_run_dirs()


@pytest.mark.slow
def test_ddp_inside_a_multirun_stays_in_its_job_dir(digits_root: Path, tmp_path: Path) -> None:
    result = run_cli(
        [
            "-m",
            "trainer=ddp_cpu",
            *TINY_RUN,
            f"data.root={digits_root}",
            f"paths.outputs_root={tmp_path}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "using ddp_spawn" in result.stdout + result.stderr
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()  # no second sweep launched by rank 1
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0"]
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())  # handed back from the spawned ranks
    assert metrics["epochs"] == 1 and metrics["global_step"] == 3 and metrics["best_epoch"] == 1
    assert metrics["best_val_top1"] is not None and metrics["last_ckpt"] == "checkpoints/last.ckpt"
    assert not (tmp_path / "train" / "runs").exists()
