"""What each command's plain values must be, checked before any work starts: one line naming the key."""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lightcls.errors import LightclsError

#: A rule: `flag`; `int:MIN` or `int:LO-HI`; `number:>=0`, `number:>0`, `number:0-1` (both ends in),
#: `number:0-<1`; `choice:a|b|c`; `device` (cpu, gpu, cuda, cuda:N, auto); `workers` (auto or an int >= 0);
#: a trailing `?` allows null.
#: Keys a command or object already checks itself (data.*, optimizer.*, trainer.max_epochs/devices, mixup,
#: eval's split and switches, export's format, search's direction) are not repeated here.
TRAIN = {
    "seed": "int:0-4294967295",
    "label_smoothing": "number:0-<1",
    "model.stem": "choice:imagenet|small|auto",
    "loss.name": "choice:auto|ce|bce|asl",
    "loss.gamma_neg": "number:>=0",
    "loss.gamma_pos": "number:>=0",
    "loss.clip": "number:0-<1",
    "lr_find": "flag",
    "report": "flag",
    "calibrate": "flag",
    "verbose": "flag",
    "overwrite": "flag",
    "data.hflip": "number:0-1",
    "data.split_seed": "int:0",
    "data.prefetch_factor": "int:1",
    "data.cache_max_mb": "number:>0",
    "data.drop_last": "flag",
    "scheduler.warmup_epochs": "number:>=0?",
    "scheduler.warmup_start_factor": "number:0-1?",
    "trainer.accumulate_grad_batches": "int:1",
    "trainer.check_val_every_n_epoch": "int:1?",
    "trainer.log_every_n_steps": "int:1",
    "trainer.gradient_clip_val": "number:>=0?",
    "trainer.num_nodes": "int:1",
    "callbacks.progress_bar.interval": "number:>=0",
}
RULES: dict[str, dict[str, str]] = {
    "train": TRAIN,
    "search": {"search.n_trials": "int:1", "search.timeout": "number:>0?"},
    "eval": {
        "data.batch_size": "int:1",
        "data.num_workers": "workers",
        "accelerator": "device",
        "calibrate": "flag",
        "min_score": "number:0-1?",
        "tta": "choice:none|flip|five_crop",
    },
    "predict": {
        "min_score": "number:0-1?",
        "tta": "choice:none|flip|five_crop",
        "topk": "int:1",
        "batch_size": "int:1",
        "annotate": "flag",
        "device": "device",
        "print_rows": "int:0",
        "embed": "flag",
    },
    "serve": {
        "host": "choice:127.0.0.1|0.0.0.0|::",
        "min_score": "number:0-1?",
        "port": "int:1024-65535",
        "device": "device",
        "topk": "int:1",
        "max_batch_size": "int:1",
        "batch_timeout": "number:>=0",
        "workers": "int:1",
        "threads": "int:1?",
        "max_body_mb": "number:>0",
        "max_pixels": "int:1",
        "log_level": "choice:critical|error|warning|info|debug",
    },
    "explain": {"topk": "int:1", "batch_size": "int:1", "device": "device"},
    "index": {
        "evaluate": "flag",
        "k": "int:1",
        "batch_size": "int:1",
        "approximate_above": "int:1",
        "device": "device",
    },
    "similar": {"k": "int:1", "batch_size": "int:1", "device": "device", "print_rows": "int:0"},
    "export": {
        "opset": "int:1?",
        "parity_atol": "number:>=0",
        "parity_rtol": "number:>=0",
        "quantize": "choice:int8?",
        "calibration_images": "int:1",
        "compare_images": "int:1",
        "min_agreement": "number:0-1",
    },
    "info": {
        "publish": "flag",
        "list": "choice:models?",
        "image_size": "int:1?",
        "channels": "choice:1|3",
        "num_classes": "int:1",
    },
}
_ABSENT = object()
_DEVICE = re.compile(r"^(cpu|gpu|cuda|auto|cuda:\d+)$")


def check_values(cfg: DictConfig, command: str) -> None:
    """Every value `RULES[command]` names, as its rule says (a LightclsError naming the first that is not)."""
    for key, rule in RULES.get(command, {}).items():
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is _ABSENT:  # a key of another choice (data.split_seed of a folder, not of shards)
            continue
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value)
        problem = broken(value, rule)
        if problem:
            raise LightclsError(f"{key}={_shown(value)}: {problem}")


def broken(value: Any, rule: str) -> str | None:
    """What is wrong with `value` under `rule` ("give a whole number >= 1"), or None when it is right."""
    optional = rule.endswith("?")
    kind, _, arg = rule.rstrip("?").partition(":")
    if value is None and optional:
        return None
    tail = " (or null)" if optional else ""
    if kind == "flag":
        return None if isinstance(value, bool) else "give true or false"
    if kind == "choice":
        options = arg.split("|")
        return (
            None
            if str(value) in options and not isinstance(value, bool)
            else f"choose one of {', '.join(options)}"
        )
    if kind == "workers":
        whole = isinstance(value, int) and not isinstance(value, bool)
        return None if value == "auto" or (whole and value >= 0) else "give auto or a whole number >= 0"
    if kind == "device":
        return (
            None
            if isinstance(value, str) and _DEVICE.match(value)
            else "choose cpu, gpu, cuda, cuda:N or auto"
        )
    if kind == "int":
        low, _, high = arg.partition("-")
        whole = isinstance(value, int) and not isinstance(value, bool)
        if high:
            ok = whole and int(low) <= value <= int(high)
            return None if ok else f"give a whole number from {low} to {high}{tail}"
        return None if whole and value >= int(low) else f"give a whole number >= {low}{tail}"
    if kind == "number":
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        return None if number and _within(float(value), arg) else f"give a number {_said(arg)}{tail}"
    raise ValueError(f"unknown rule {rule!r}")


def _within(value: float, arg: str) -> bool:
    if arg.startswith(">="):
        return value >= float(arg[2:])
    if arg.startswith(">"):
        return value > float(arg[1:])
    low, _, high = arg.partition("-")
    return (
        float(low) <= value < float(high[1:]) if high.startswith("<") else float(low) <= value <= float(high)
    )


def _said(arg: str) -> str:
    if arg.startswith(">"):
        return f"{arg[:2].rstrip('0123456789.')} {arg.lstrip('>=')}"
    low, _, high = arg.partition("-")
    return f"from {low} to below {high[1:]}" if high.startswith("<") else f"from {low} to {high}"


def _shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
