"""The info task: parameters, FLOPs, classes and input contract of a checkpoint or a named backbone."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from lightcls.ckpt import DATA_KEY, DIGEST_KEY, read_checkpoint
from lightcls.errors import LightclsError
from lightcls.files import write_json
from lightcls.inference import contract
from lightcls.models import build_model
from lightcls.models.catalog import describe, zoo_table
from lightcls.models.size import count
from lightcls.models.zoo import check_input_size, check_name, on_meta_device
from lightcls.training import ClassificationModule
from lightcls.workflows.checks import check_info

#: What a published checkpoint keeps (Lightning still loads it; training state is dropped).
PUBLISHED_KEYS = (
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "state_dict",
    "hparams_name",
    "hyper_parameters",
    DATA_KEY,
    "datamodule_hparams_name",
    DIGEST_KEY,
)


def info(cfg: DictConfig) -> dict[str, Any]:
    """Facts about `cfg.ckpt_path` or `cfg.model.name`; optionally publish the checkpoint; return them."""
    check_info(cfg)
    out_dir = Path(str(cfg.save_dir or cfg.paths.output_dir)).expanduser().resolve()
    if cfg.get("list") == "models":
        return list_models(cfg, out_dir)
    if cfg.ckpt_path:
        ckpt = read_checkpoint(cfg.ckpt_path)
        net = ClassificationModule.from_checkpoint(cfg.ckpt_path).net
        facts: dict[str, Any] = {
            "ckpt": str(Path(str(cfg.ckpt_path)).resolve()),
            **contract(ckpt["hyper_parameters"], ckpt["state_dict"]),
        }
        facts["epoch"] = ckpt.get("epoch")
    elif cfg.get("model"):
        check_name(cfg.model.name)
        size = cfg.image_size or describe(cfg.model.name)["image_size"]
        pre = {"image_size": int(size), "channels": int(cfg.channels), "mean": [], "std": []}
        check_input_size(cfg.model.name, pre["image_size"], key="image_size")
        with on_meta_device():  # sizes without memory: counted as `lightcls-info models` counts them
            net = build_model(
                cfg.model.name, int(cfg.num_classes), pre["channels"], image_size=pre["image_size"]
            )
        facts = {"model": cfg.model.name, "classes": int(cfg.num_classes), "preprocess": pre}
    else:
        raise LightclsError("pass ckpt_path=/path/to/model.ckpt or model=NAME")
    pre = facts["preprocess"]
    device = "meta" if next(net.parameters()).is_meta else "cpu"
    facts.update(count(net, int(pre["channels"]), int(pre["image_size"]), device=device))
    if cfg.publish:
        if not cfg.ckpt_path:
            raise LightclsError("publish=true needs ckpt_path=... (a trained checkpoint)")
        facts["published"] = str(publish(Path(str(cfg.ckpt_path)), out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "info.json", facts)
    print_info(facts)
    return facts


def list_models(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Every model (of `cfg.family`): family, parameters, FLOPs at `cfg.image_size`, the input sides it
    takes, its published weights; printed as a table and written to models.json."""
    with Console().status("counting every model's parameters and FLOPs (on the meta device: no memory)"):
        rows = zoo_table(cfg.image_size, int(cfg.channels), cfg.family)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "models.json", rows)
    where = f"at {cfg.image_size} px" if cfg.image_size else "at the side its weights were trained at"
    table = Table(
        title=f"lightcls models: {len(rows)}, FLOPs of one {cfg.channels}-channel image {where}",
        caption="takes px: the smallest side, x: a multiple it must be; top-1: ImageNet with the weights",
    )
    for column in (
        "model",
        "family",
        "params (M)",
        "GFLOPs",
        "side",
        "takes px",
        "weights",
        "ImageNet top-1",
    ):
        left = column in ("model", "family", "weights")
        table.add_column(column, justify="left" if left else "right", no_wrap=column != "ImageNet top-1")
    for row in rows:
        takes = f"{row['min_size']}+" + (f" x{row['multiple']}" if row["multiple"] else "")
        table.add_row(
            row["model"],
            row["family"],
            f"{row['params'] / 1e6:.1f}" if row["params"] else "-",
            f"{row['flops'] / 1e9:.3f}" if row["flops"] else "-",
            str(row["image_size"]),
            takes,
            row["weights"] or "-",
            f"{row['imagenet_top1']:.1f}" if row["imagenet_top1"] else "-",
        )
    Console().print(table)
    return {"models": rows}


def publish(path: Path, out_dir: Path) -> Path:
    """A copy of the checkpoint without optimizer and loop state, named `<stem>-<sha256[:8]>.ckpt`."""
    ckpt = read_checkpoint(path)
    slim = {k: ckpt[k] for k in PUBLISHED_KEYS if k in ckpt}
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{path.stem}.publishing"
    torch.save(slim, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)
    target = out_dir / f"{stem}-{digest}.ckpt"
    tmp.replace(target)
    return target


def print_info(facts: dict[str, Any]) -> None:
    """One table of the facts a user asks for first."""
    pre = facts["preprocess"]
    classes = facts["classes"]
    table = Table(title=f"lightcls info: {facts['model']}", show_header=False)
    table.add_row("parameters", f"{facts['params']:,} ({facts['params'] / 1e6:.2f} M)")
    table.add_row("FLOPs", f"{facts['flops']:,} ({facts['flops'] / 1e9:.3f} G) at {facts['flops_input']}")
    table.add_row(
        "MACs", f"{facts['macs']:,} ({facts['macs'] / 1e9:.3f} G; what mmpretrain's get_flops calls FLOPs)"
    )
    table.add_row(
        "classes", f"{len(classes)}: {', '.join(classes)}" if isinstance(classes, list) else str(classes)
    )
    table.add_row("input", f"{pre['channels']} x {pre['image_size']} x {pre['image_size']}")
    if pre.get("mean"):
        table.add_row("mean / std", f"{pre['mean']} / {pre['std']}")
    if facts.get("task") == "multilabel":
        shown = sorted({round(t, 2) for t in facts["thresholds"]})
        table.add_row("task", f"multi-label (a sigmoid per class; thresholds {', '.join(map(str, shown))})")
    if "published" in facts:
        table.add_row("published", facts["published"])
    Console().print(table)
