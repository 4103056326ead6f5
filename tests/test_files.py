"""Result files are written whole or not at all, and read back in one line when they are not whole."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from helpers import one_line_error
from lightcls.files import read_json, write_json


def test_a_full_disk_leaves_no_partial_file_and_the_old_one_whole(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "predictions.json"
    write_json(target, {"results": [1]})
    real = Path.write_text

    def half_then_full(self: Path, text: str, *args, **kwargs) -> int:  # the disk fills mid-write
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_json(target, {"results": list(range(1000))})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.json"]
    assert json.loads(target.read_text()) == {"results": [1]}


def test_a_truncated_or_missing_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"best_val_top1": 0.9, "epo')
    assert one_line_error(read_json, path, "a run's results") == (
        f"{path}: cannot be read (unterminated string starting at); a run's results"
    )
    assert one_line_error(read_json, tmp_path / "none.json") == f"{tmp_path / 'none.json'}: no such file"
