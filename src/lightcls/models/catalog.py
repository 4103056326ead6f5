"""The zoo as a table: each model's family, size and FLOPs, the sides it takes, its published weights."""

from __future__ import annotations

from typing import Any

from lightcls.errors import LightclsError
from lightcls.models.registry import build_model
from lightcls.models.size import count
from lightcls.models.zoo import (
    FAMILIES,
    check_input_size,
    family_of,
    on_meta_device,
    size_rule,
    weights_of,
    zoo_names,
)


def describe(name: str, image_size: int | None = None, channels: int = 3) -> dict[str, Any]:
    """One zoo entry: family, parameters and FLOPs counted at `image_size` (None: the side its weights were
    trained at; 32 for lenet) on the meta device, the smallest side and the side it must be a multiple of, and
    the published weights with their ImageNet top-1."""
    family = family_of(name)
    weights = weights_of(name)
    native = int(weights.transforms().crop_size[0]) if weights is not None else 32
    smallest, multiple = size_rule(name)
    entry: dict[str, Any] = {
        "model": name,
        "family": family.name,
        "image_size": image_size or native,
        "min_size": smallest,
        "multiple": multiple,
        "weights": str(weights).split(".", 1)[-1] if weights is not None else None,
        "imagenet_top1": weights.meta["_metrics"]["ImageNet-1K"]["acc@1"] if weights is not None else None,
        "small_stem": family.small_stem,
    }
    try:
        check_input_size(name, entry["image_size"])
    except LightclsError:
        return {**entry, "params": None, "flops": None}
    with on_meta_device():
        net = build_model(name, 1000, channels, image_size=entry["image_size"])
    sizes = count(net, channels, entry["image_size"], device="meta")
    return {**entry, "params": sizes["params"], "flops": sizes["flops"]}


def zoo_table(image_size: int | None = None, channels: int = 3, family: str | None = None) -> list[dict]:
    """`describe` for every model (of one family, if given)."""
    if family is not None and family not in {f.name for f in FAMILIES}:
        names = ", ".join(f.name for f in FAMILIES)
        raise LightclsError(f"family={family}: not a model family; choose one of {names}")
    names = [n for n in zoo_names() if family is None or family_of(n).name == family]
    return [describe(n, image_size, channels) for n in names]
