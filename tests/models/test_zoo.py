"""The whole zoo: every torchvision classifier builds for 1 and 3 channels at its smallest side, one of each
family trains a step, the configs match the zoo, and input sizes a model cannot take are one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torchvision import models as tvm

from helpers import assert_refused, compose_train, one_line_error, refused_in_process
from lightcls.config import config_dir
from lightcls.models import build_model, list_models, model_lines
from lightcls.models.catalog import describe
from lightcls.models.registry import _set_in_channels
from lightcls.models.size import count
from lightcls.models.zoo import (
    FAMILIES,
    check_input_size,
    family_of,
    members,
    on_meta_device,
    size_rule,
    zoo_names,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from model_configs import family_config, model_config  # noqa: E402


def test_every_torchvision_classifier_is_a_model() -> None:
    names = list_models()
    assert set(tvm.list_models(module=tvm)) | {"lenet"} == set(names) and len(names) >= 70
    assert {family_of(n).name for n in names} == {f.name for f in FAMILIES}


def test_every_model_has_its_generated_config() -> None:
    lines = model_lines()
    stale = [
        n
        for n in zoo_names()
        if not (path := config_dir() / "model" / f"{n}.yaml").is_file()
        or path.read_text(encoding="utf-8") != model_config(n, lines[n])
    ]
    assert not stale, f"run `make model-configs`: {stale}"
    families = {p.stem for p in (config_dir() / "base" / "family").glob("*.yaml")}
    assert families == {f.name for f in FAMILIES}
    assert "override /optimizer: adamw" in family_config("X")


def test_a_family_default_optimizer_and_the_users_choice() -> None:
    cfg = compose_train(["model=regnet_y_400mf"])
    assert cfg.model.name == "regnet_y_400mf" and cfg.optimizer._target_ == "torch.optim.AdamW"
    assert cfg.model.stem == "imagenet" and cfg.model.pretrained is False
    sgd = compose_train(["model=regnet_y_400mf", "optimizer=sgd"]).optimizer
    assert sgd._target_ == "torch.optim.SGD" and sgd.lr == 0.05  # the family's choice does not leak


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_every_model_runs_at_its_smallest_side_with_1_and_3_channels(family: str) -> None:
    # every model at its own smallest side; the first-layer swap to one channel, family by family (each
    # family swaps the same layer); a forward on the meta device is all Python (~0.1 s for a big model)
    for i, name in enumerate(members(family)):
        smallest, multiple = size_rule(name)
        side = max(smallest, multiple)
        with on_meta_device(), torch.no_grad():
            net = build_model(name, 7, 3, image_size=side).eval()
            assert net(torch.zeros(2, 3, side, side)).shape == (2, 7), name
            if i > 0:
                continue
            _set_in_channels(net, 1)
            assert net(torch.zeros(2, 1, side, side)).shape == (2, 7), name
            if not multiple and smallest > 1:  # the smallest side is the smallest: one less fails
                with pytest.raises((RuntimeError, ValueError)):
                    net(torch.zeros(2, 1, side - 1, side - 1))


@pytest.mark.parametrize("family", [f.name for f in FAMILIES if f.stem])
def test_the_small_stem_keeps_a_32px_images_detail(family: str) -> None:
    name = members(family)[0]
    conv_path, pool_path = family_of(name).stem
    with on_meta_device():
        nets = {stem: build_model(name, 7, 1, stem=stem) for stem in ("imagenet", "small")}
    conv = nets["small"].get_submodule(conv_path)
    assert (conv.kernel_size, conv.stride, conv.in_channels) == ((3, 3), (1, 1), 1)
    if pool_path:
        assert isinstance(nets["small"].get_submodule(pool_path), torch.nn.Identity)
    flops = {stem: count(net, 1, 32, device="meta")["flops"] for stem, net in nets.items()}
    # every layer after the stem sees 4x the map (16x without the max-pool); the classifier stays
    assert flops["small"] >= 2 * flops["imagenet"], flops


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_the_smallest_of_each_family_trains_a_step(family: str) -> None:
    name = members(family)[0]
    smallest, multiple = size_rule(name)
    side = max(32, smallest, multiple)
    torch.manual_seed(0)
    net = build_model(name, 3, 1, image_size=side).train()
    x, y = torch.randn(2, 1, side, side), torch.tensor([0, 2])
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)  # one pass over the weights (vgg: 133M)

    head = [p for p in net.parameters()][-1].detach().clone()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    optimizer.step()
    grads = [p.grad for p in net.parameters()]  # every weight learns (a NaN or inf in a grad: its sum is one)
    assert all(g is not None and torch.isfinite(g.sum()) for g in grads), name
    assert not torch.equal(head, [p for p in net.parameters()][-1]), name


def test_sizes_a_model_cannot_take_are_one_line() -> None:
    assert one_line_error(check_input_size, "vit_b_16", 40) == (
        "model=vit_b_16 takes data.image_size in multiples of 16 (its patches tile the image); got 40, "
        "try 32 or 48"
    )
    assert one_line_error(check_input_size, "maxvit_t", 64) == (
        "model=maxvit_t takes data.image_size in multiples of 224 (its attention windows tile the image); "
        "got 64, try 224"
    )
    assert one_line_error(check_input_size, "alexnet", 32) == (
        "model=alexnet needs data.image_size >= 63 (its pooling and strides leave nothing smaller); got 32"
    )
    check_input_size("vit_b_16", 32)
    check_input_size("squeezenet1_1", 17)


def test_a_size_the_model_cannot_take_is_refused_before_any_run_dir(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    result = refused_in_process(
        "train", ["model=inception_v3", "data=digits", f"paths.outputs_root={out}"], capsys
    )
    assert_refused(
        result,
        "model=inception_v3 needs data.image_size >= 75 (its pooling and strides leave nothing smaller); "
        "got 32",
    )
    assert not out.exists()


def test_describe_counts_at_a_side_and_names_the_weights() -> None:
    vit = describe("vit_b_16", 32, channels=1)
    assert vit["family"] == "vit" and vit["min_size"] == vit["multiple"] == 16
    assert vit["weights"] == "IMAGENET1K_V1" and vit["imagenet_top1"] == 81.072
    assert 85e6 < vit["params"] < 86.5e6 and vit["flops"] < describe("vit_b_16")["flops"] / 30
    assert describe("maxvit_t", 32)["flops"] is None  # it cannot take 32 px
    # torchvision's published GFLOPs count a multiply-add once; attention's matmuls are counted too
    assert abs(describe("vit_b_16")["flops"] / 2e9 - 17.564) < 0.1
    lenet = describe("lenet")
    assert lenet["weights"] is None and lenet["image_size"] == 32 and lenet["params"] > 0
