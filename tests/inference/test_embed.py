"""Embeddings: a checkpoint's penultimate features as unit rows, the same on every run; the classification
layer they are taken before, found in every model family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import one_line_error
from lightcls.api import Classifier
from lightcls.inference import CheckpointPredictor
from lightcls.inference.embed import check_embeddable, embed, embed_files, unit_rows
from lightcls.models import build_model
from lightcls.models.head import head
from lightcls.models.zoo import FAMILIES, members, on_meta_device, size_rule

#: each family's classification layer, the one `build_model` sizes for the class count
HEADS = {
    "lenet": "classifier.3",
    "alexnet": "classifier.6",
    "convnext": "classifier.2",
    "densenet": "classifier",
    "efficientnet_v2": "classifier.1",
    "efficientnet": "classifier.1",
    "googlenet": "fc",
    "inception": "fc",
    "maxvit": "classifier.5",
    "mnasnet": "classifier.1",
    "mobilenet_v2": "classifier.1",
    "mobilenet_v3": "classifier.3",
    "regnet": "fc",
    "resnet": "fc",
    "resnext": "fc",
    "shufflenet_v2": "fc",
    "squeezenet": "classifier.1",
    "swin": "head",
    "vgg": "classifier.6",
    "vit": "heads.head",
    "wide_resnet": "fc",
}


def test_every_family_has_its_head_table_entry() -> None:
    assert set(HEADS) == {f.name for f in FAMILIES}


@pytest.mark.parametrize("family", sorted(HEADS))
def test_the_head_of_each_family_and_the_features_it_takes(family: str) -> None:
    name = members(family)[0]
    smallest, multiple = size_rule(name)
    side = max(smallest, -(-64 // (multiple or 1)) * (multiple or 1))  # squeezenet's map is 3x3 at 64
    seen: list[torch.Tensor] = []
    with on_meta_device(), torch.no_grad():
        net = build_model(name, 7, 3, image_size=side).eval()
        layer = head(net)
        layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        net(torch.zeros(2, 3, side, side))
    assert layer is net.get_submodule(HEADS[family]), name
    outputs, inputs = (
        (layer.out_features, layer.in_features)
        if isinstance(layer, nn.Linear)
        else (layer.out_channels, layer.in_channels)
    )
    assert outputs == 7, name
    rows = unit_rows(torch.ones(seen[0].shape))  # squeezenet's is a map: pooled
    assert rows.shape == (2, inputs) and torch.allclose(rows.norm(dim=1), torch.ones(2)), name


def test_embeddings_are_unit_rows_and_the_same_on_every_run(trained_run: Path, digits_root: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    files = sorted((digits_root / "test_set" / "three").iterdir())[:5]
    predictor = CheckpointPredictor(ckpt)
    vectors, kept = embed_files(predictor, files, 2, [])
    assert kept == files and vectors.shape == (5, 84) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    assert np.allclose(embed_files(predictor, files, 5, [])[0], vectors, atol=1e-6)  # batches of 5 vs 2
    again = embed(CheckpointPredictor(ckpt), [predictor.to_tensor(f) for f in files]).numpy()
    assert np.allclose(again, vectors, atol=1e-6)
    assert np.allclose(Classifier.load(ckpt).embed([str(f) for f in files]), vectors, atol=1e-6)
    # the features the classifier reads: its last layer on them gives the model's own logits
    module = predictor.module
    raw = module.net.features(predictor.preprocess.normalize(predictor.resize(predictor.to_tensor(files[0]))))
    hidden = module.net.classifier[:3](raw[None])
    assert np.allclose(vectors[0], (hidden / hidden.norm()).detach().numpy()[0], atol=1e-5)


def test_an_exported_model_has_no_embeddings(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{}")
    for exported in (tmp_path / "model.onnx", tmp_path / "model.pt"):
        assert one_line_error(check_embeddable, exported) == (
            f"ckpt_path={exported}: an exported model has no embeddings (class scores only); pass the "
            ".ckpt it was exported from"
        )
    check_embeddable(tmp_path / "last.ckpt")
