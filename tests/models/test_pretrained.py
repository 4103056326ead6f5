"""Pretrained weights: torchvision files and our checkpoints, adapted to the class count and channels."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torchvision.models import VisionTransformer, resnet18

from lightcls.errors import LightclsError
from lightcls.models import LeNet5, build_model, load_pretrained


def test_torchvision_weights_file_loads_into_a_grayscale_three_class_model(tmp_path: Path) -> None:
    source = resnet18(num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    net = build_model("resnet18", 3, in_channels=1)
    report = load_pretrained(net, "resnet18", str(tmp_path / "resnet18.pth"))
    assert report["adapted"] == ["conv1.weight"]
    assert report["skipped"] == ["fc.weight", "fc.bias"]
    assert torch.equal(net.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert torch.allclose(net.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))


def test_our_checkpoint_loads_as_pretrained_weights(trained_run: Path) -> None:
    net = build_model("lenet", 3, in_channels=1)
    report = load_pretrained(net, "lenet", str(trained_run / "checkpoints" / "last.ckpt"))
    assert report["skipped"] == ["classifier.3.weight", "classifier.3.bias"]
    state = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(net.features[0].weight, state["net.features.0.weight"])


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    torch.save(resnet18().state_dict(), tmp_path / "r.pth")
    with pytest.raises(LightclsError, match=r"none of its weights fit model 'lenet' \(is it a checkpoint"):
        load_pretrained(LeNet5(10, 1), "lenet", str(tmp_path / "r.pth"))


def test_missing_weights_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LightclsError, match=r"^model.pretrained=.*nope.pth: no such file$"):
        load_pretrained(LeNet5(10, 1), "lenet", str(tmp_path / "nope.pth"))


def test_lenet_has_no_published_weights() -> None:
    with pytest.raises(LightclsError, match=r"torchvision publishes no weights for 'lenet'"):
        load_pretrained(LeNet5(10, 1), "lenet", True)


def _openmmlab(state: dict, rename) -> dict:
    """A state dict saved as mmpretrain/MMEdu save it: {'meta', 'state_dict': backbone.* and head.*}."""
    keys = list(state)
    mapped = {f"backbone.{rename(i, k)}": v for i, (k, v) in enumerate(state.items()) if i < len(keys) - 2}
    mapped.update({"head.fc.weight": state[keys[-2]], "head.fc.bias": state[keys[-1]]})
    return {
        "meta": {"mmpretrain_version": "1.2.0", "dataset_meta": {"classes": ["a", "b", "c"]}},
        "state_dict": mapped,
    }


@pytest.mark.parametrize(
    ("name", "rename"),
    [
        ("resnet18", lambda i, k: k),  # mmpretrain's ResNet names are torchvision's, under backbone.
        ("mobilenet_v2", lambda i, k: f"layer{i // 6}.block{i % 6}"),  # other names: mapped by order
    ],
)
def test_an_mmpretrain_checkpoint_maps_to_torchvision_names(
    name: str, rename, tmp_path: Path, caplog
) -> None:
    source = build_model(name, 3, 3)
    path = tmp_path / "mm.pth"
    torch.save(_openmmlab(source.state_dict(), rename), path)
    target = build_model(name, 3, 3)
    with caplog.at_level(logging.INFO, logger="lightcls"):
        result = load_pretrained(target, name, str(path))
    assert result["missing"] == [] and result["skipped"] == []
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert "an mmpretrain/MMEdu checkpoint" in caplog.text
    with pytest.raises(
        LightclsError, match=r"an OpenMMLab checkpoint whose backbone does not fit this model"
    ):
        load_pretrained(build_model("efficientnet_b0", 3, 3), "efficientnet_b0", str(path))


@pytest.mark.parametrize(
    ("name", "backbone", "features"),
    [("resnet18", {"type": "ResNet", "depth": 18}, 512), ("mobilenet_v2", {"type": "MobileNetV2"}, 1280)],
)
def test_a_real_mmpretrain_model_gives_the_same_logits_once_loaded(
    name: str, backbone: dict, features: int, tmp_path: Path
) -> None:
    """mmpretrain itself builds and saves the checkpoint (`make test-mmpretrain` installs it)."""
    pytest.importorskip("mmpretrain", reason="mmpretrain is not installed: make test-mmpretrain runs this")
    from mmengine.runner.checkpoint import save_checkpoint
    from mmpretrain.models import build_classifier
    from mmpretrain.utils import register_all_modules

    register_all_modules()
    head = {"type": "LinearClsHead", "num_classes": 10, "in_channels": features}
    mm = build_classifier(
        {
            "type": "ImageClassifier",
            "backbone": backbone,
            "neck": {"type": "GlobalAveragePooling"},
            "head": head,
        }
    )
    generator = torch.Generator().manual_seed(0)
    for value in mm.state_dict().values():  # every weight and statistic distinct and far from the init
        if value.is_floating_point():
            value.copy_(torch.rand(value.shape, generator=generator) * 0.5 + 0.5)
    mm.eval()
    path = tmp_path / f"{name}_mmpretrain.pth"
    save_checkpoint({"meta": {"mmpretrain_version": "1.2.0"}, "state_dict": mm.state_dict()}, str(path))

    net = build_model(name, 10).eval()
    report = load_pretrained(net, name, str(path))
    assert report["missing"] == [] and report["skipped"] == [] and report["adapted"] == []
    x = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = mm(x, mode="tensor")
        torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_vit_weights_for_another_side_get_their_positions_interpolated(tmp_path: Path) -> None:
    def tiny_vit(
        side: int, channels: int
    ) -> torch.nn.Module:  # vit_b_32's design, a few hundred weights wide
        net = VisionTransformer(
            side, 32, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
        )
        if channels == 1:
            net.conv_proj = torch.nn.Conv2d(1, 16, kernel_size=32, stride=32)
        return net

    source = tiny_vit(96, 3)  # 3x3 patches (+ the class token)
    path = tmp_path / "vit.pth"
    torch.save(source.state_dict(), path)
    target = tiny_vit(64, 1)  # 2x2 patches, grayscale
    result = load_pretrained(target, "vit_b_32", str(path))
    assert set(result["adapted"]) == {"conv_proj.weight", "encoder.pos_embedding"}
    assert result["missing"] == [] and target.encoder.pos_embedding.shape == (1, 5, 16)
    assert torch.equal(target.encoder.pos_embedding[:, 0], source.encoder.pos_embedding[:, 0])  # class token
