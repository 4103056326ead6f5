"""notebooks/quickstart.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.slow
def test_quickstart_notebook_runs(digits_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # data/digits is the session's copy of the embedded set, decoded and checked once: the notebook trains on
    # it as on the one its first run writes there (that write: tests/data/test_datamodule.py)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits").symlink_to(digits_root, target_is_directory=True)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert (run_dir / "report.html").is_file() and (run_dir / "eval" / "confusion_matrix.png").is_file()
    assert list((run_dir / "eval" / "gallery").glob("wrong_*.png"))
    assert (tmp_path / "outputs" / "export" / "quickstart" / "model.onnx").is_file()
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the curves and the confusion matrix
