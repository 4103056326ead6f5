"""Run dirs: chosen in plain Python, unique per run, a resumed run's own dir."""

from __future__ import annotations

from pathlib import Path

from helpers import compose_train
from lightcls.config import resumed_run_dir, run_dir_overrides, unique_dir


def test_runs_started_in_the_same_second_get_their_own_dirs(tmp_path: Path) -> None:
    first = unique_dir(tmp_path, stamp="2026-01-01_00-00-00")
    second = unique_dir(tmp_path, stamp="2026-01-01_00-00-00")
    assert first.name == "2026-01-01_00-00-00" and second.name == "2026-01-01_00-00-00_1"
    assert first.is_dir() and second.is_dir()


def test_resuming_a_run_continues_in_its_dir(tmp_path: Path) -> None:
    ckpt = tmp_path / "runs" / "2026-01-01_00-00-00" / "checkpoints" / "last.ckpt"
    assert resumed_run_dir(str(ckpt)) == ckpt.parent.parent
    assert resumed_run_dir(str(tmp_path / "weights.ckpt")) is None
    cfg = compose_train([f"ckpt_path={ckpt}", f"paths.outputs_root={tmp_path}/out"])
    assert run_dir_overrides(cfg, [], multirun=False) == [f'hydra.run.dir="{ckpt.parent.parent}"']
    assert not (tmp_path / "out").exists()


def test_a_fresh_run_and_a_sweep_claim_a_dir_of_their_own(tmp_path: Path) -> None:
    cfg = compose_train([f"paths.outputs_root={tmp_path}"])
    (run,) = run_dir_overrides(cfg, [], multirun=False)
    (sweep,) = run_dir_overrides(cfg, ["-m"], multirun=True)
    assert run.startswith(f'hydra.run.dir="{tmp_path}/train/runs/')
    assert sweep.startswith(f'hydra.sweep.dir="{tmp_path}/train/multiruns/')
    assert [p.parent.name for p in (tmp_path / "train").glob("*/*")] != []
    # a dir given on the command line (Lightning's DDP launcher gives its ranks the parent's) is kept
    assert run_dir_overrides(cfg, ["hydra.run.dir=/x"], multirun=False) == []
