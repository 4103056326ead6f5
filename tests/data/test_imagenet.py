"""ImageNet's own layout on a tiny mock (train/<wnid>/*.JPEG, the flat val/ folder and its ground truth):
val.txt written from Kaggle's CSV or the devkit, then read by data=imagenet as a split folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hydra.utils import instantiate
from PIL import Image

from helpers import compose_train, one_line_error
from lightcls.data.imagenet import write_val_list

WNIDS = ["n01440764", "n01443537", "n01484850"]
#: the ground truth of val images 1..4 (their wnids)
VAL = ["n01484850", "n01440764", "n01443537", "n01440764"]


def mock_imagenet(root: Path) -> Path:
    """Two training JPEGs per wnid and four flat validation JPEGs, as ILSVRC-2012 unpacks."""
    rng = np.random.default_rng(0)
    for wnid in WNIDS:
        (root / "train" / wnid).mkdir(parents=True)
        for i in range(2):
            image = Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8))
            image.save(root / "train" / wnid / f"{wnid}_{i}.JPEG")
    (root / "val").mkdir()
    for i in range(1, len(VAL) + 1):
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(
            root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG"
        )
    return root


def _kaggle(root: Path) -> None:
    rows = [f"ILSVRC2012_val_{i:08d},{wnid} 1 2 9 9 {wnid} 3 3 8 8" for i, wnid in enumerate(VAL, start=1)]
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows[::-1]) + "\n")


def _devkit(root: Path) -> None:
    """meta.mat (ILSVRC2012_ID -> WNID: IDs not in wnid order, and a parent synset) and the ground truth."""
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    kind = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    ids = {"n01484850": 1, "n01440764": 2, "n01443537": 3}
    rows = [(ids[w], w, w, 0) for w in WNIDS] + [(1001, "n00000001", "entity", 3)]
    scipy.io.savemat(data / "meta.mat", {"synsets": np.array(rows, dtype=kind)})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(str(ids[w]) for w in VAL) + "\n")


@pytest.mark.parametrize("truth", [_kaggle, _devkit])
def test_val_txt_labels_the_flat_val_folder_and_data_imagenet_reads_it(tmp_path: Path, truth) -> None:
    root = mock_imagenet(tmp_path / "imagenet")
    truth(root)
    assert write_val_list(root).read_text().splitlines()[:2] == [
        "ILSVRC2012_val_00000001.JPEG 2",
        "ILSVRC2012_val_00000002.JPEG 0",
    ]
    datamodule = instantiate(compose_train(["data=imagenet", f"data.root={root}"]).data)
    layout = datamodule.layout
    assert layout.classes == WNIDS and len(layout.splits["train"]) == 6
    assert [(p.name, label) for p, label in layout.splits["val"]][-1] == ("ILSVRC2012_val_00000004.JPEG", 0)


def test_missing_ground_truth_is_one_line(tmp_path: Path) -> None:
    root = mock_imagenet(tmp_path / "imagenet")
    assert one_line_error(write_val_list, root) == (
        f"{root}: no LOC_val_solution.csv and no ILSVRC2012_devkit_t12/data/meta.mat: the validation labels "
        "are in one of them"
    )
