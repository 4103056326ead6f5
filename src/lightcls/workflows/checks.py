"""What is checked before each command runs, in one place: the values its rules name
(lightcls.config.values), then what needs the objects a run builds (the DataModule's arguments, the optimizer
and schedule, MixUp/CutMix, the devices, the files named, the search space). A mistake is one LightclsError.

The command line runs `check_<command>` on every composed variant before Hydra makes a run dir; each task
runs it again as it starts (the Python API and sweep jobs come in there).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightcls.ckpt import best_of_sweep, model_file
from lightcls.config.checks import check_devices, check_kinds, check_max_epochs, trainer_devices
from lightcls.config.values import broken, check_values
from lightcls.data import SplitFolderDataModule, StreamingDataModule
from lightcls.data.layout import read_layout
from lightcls.data.shards import check_bucket, is_url
from lightcls.errors import LightclsError, one_line
from lightcls.evaluation.metrics import check_metric_options
from lightcls.inference.embed import check_embeddable
from lightcls.inference.export import FORMATS
from lightcls.models.registry import resolve_stem
from lightcls.models.zoo import check_input_size
from lightcls.training.distill import check_distill
from lightcls.training.module import build_loss, build_mix
from lightcls.training.optim import check_optimization
from lightcls.workflows.build import build_datamodule, mix_alphas, plain
from lightcls.workflows.trackers import check_loggers

SPLITS = ("val", "test")
SUGGEST = ("float", "int", "categorical")


def check_train_values(cfg: DictConfig) -> None:
    """The train config's values that would fail late, deep in torch, or start too many processes (the
    training run checks them again as it starts)."""
    check_values(cfg, "train")
    check_loggers(cfg)
    threshold = cfg.get("threshold", 0.5)
    if threshold != "tune" and broken(threshold, "number:0-1"):
        raise LightclsError(f"threshold={threshold}: give a number from 0 to 1 (multi-label), or tune")
    check_optimization(plain(cfg.optimizer), plain(cfg.scheduler))
    check_distill(plain(cfg.get("distill")))
    check_kinds(cfg, [key for key in ("lr_find", "report", "verbose", "overwrite") if key in cfg])
    build_mix(mix_alphas(cfg), 2)
    check_max_epochs(cfg.trainer.get("max_epochs"))
    check_devices(cfg.trainer.get("accelerator", "auto"), trainer_devices(cfg))


def check_train(cfg: DictConfig) -> None:
    """`lightcls-train`: the values, the DataModule's own argument checks, and the files it names; a loss
    chosen by name, against the task its data gives (its annotation files read, its images not)."""
    datamodule = build_datamodule(cfg)
    check_train_values(cfg)
    name, size = str(cfg.model.name), datamodule.preprocess.image_size
    check_input_size(name, size)
    resolve_stem(name, str(cfg.model.get("stem") or "imagenet"), size)
    loss = plain(cfg.get("loss")) or {}
    named = loss.get("name", "auto") != "auto"
    if named and isinstance(datamodule, SplitFolderDataModule) and datamodule.root.is_dir():
        folder = datamodule
        layout = read_layout(
            folder.root, folder.val_fraction, folder.split_seed, folder.lists, folder.label_delim
        )
        build_loss(loss, "multilabel" if layout.multilabel else "multiclass", None, 0.0)
    if isinstance(datamodule, StreamingDataModule) and is_url(datamodule.location):
        check_bucket(datamodule.location)  # a bucket that is not there, or no credentials: before any run dir
    for key in ("ckpt_path", "model.pretrained"):
        value = OmegaConf.select(cfg, key)
        if isinstance(value, str) and not best_of_sweep(Path(value).expanduser()).exists():
            raise LightclsError(f"{key}={value}: no such file")


def check_search(cfg: DictConfig) -> None:
    """The search settings and the train config (each range's ends are checked when the search starts)."""
    spec = cfg.search
    check_values(cfg, "search")
    if spec.direction not in ("maximize", "minimize"):
        raise LightclsError(f"search.direction={spec.direction}: choose maximize or minimize")
    space = search_space(spec.space)
    if not space:
        raise LightclsError("search.space is empty: give at least one key to search")
    for key, entry in space.items():
        _check_space_entry(key, entry)
    check_train(cfg)


def check_eval(cfg: DictConfig) -> None:
    """The eval options a run would otherwise refuse only after loading the model (before any run dir)."""
    check_values(cfg, "eval")
    if cfg.split not in SPLITS:
        raise LightclsError(f"split={cfg.split}: unknown split; choose one of {', '.join(SPLITS)}")
    check_metric_options(list(cfg.topk), str(cfg.average))
    check_kinds(cfg, ("save_predictions", "save_scores", "gallery_right", "report"), ("gallery",))
    if not best_of_sweep(Path(str(cfg.ckpt_path)).expanduser()).exists():
        raise LightclsError(f"ckpt_path={cfg.ckpt_path}: no such file")


def check_export(cfg: DictConfig) -> None:
    """`lightcls-export`: the options, before the checkpoint is loaded or a run dir made."""
    check_values(cfg, "export")
    if cfg.format not in FORMATS:
        raise LightclsError(f"format={cfg.format}: choose one of {', '.join(FORMATS)}")
    check_kinds(cfg, ("fp16", "dynamic_batch"), ("parity_images",))
    if cfg.get("quantize") and cfg.format != "onnx":
        raise LightclsError(f"quantize={cfg.quantize}: ONNX Runtime quantizes ONNX; give format=onnx")
    if cfg.get("quantize") and cfg.fp16:
        raise LightclsError(f"quantize={cfg.quantize}: it quantizes the fp32 model; leave fp16=false")


def check_predict(cfg: DictConfig) -> None:
    """`lightcls-predict`: its values; `embed=true` needs a .ckpt."""
    check_values(cfg, "predict")
    if cfg.get("embed"):
        check_embeddable(cfg.ckpt_path)


def check_serve(cfg: DictConfig) -> None:
    """`lightcls-serve`: its values and the model it names, before anything starts."""
    check_values(cfg, "serve")
    if not best_of_sweep(Path(str(cfg.ckpt_path)).expanduser()).exists():
        raise LightclsError(f"ckpt_path={cfg.ckpt_path}: no such file (or run or sweep dir)")
    host = str(cfg.host)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(cfg.port)))
        except OSError as err:
            reason = "in use" if err.errno == errno.EADDRINUSE else err.strerror
            taken = f"port={cfg.port}: {host}:{cfg.port} is {reason}"
            raise LightclsError(f"{taken}; choose another port=") from None


def check_explain(cfg: DictConfig) -> None:
    """`lightcls-explain`: its values."""
    check_values(cfg, "explain")


def check_index(cfg: DictConfig) -> None:
    """`lightcls-index`: its values and the checkpoint it names."""
    check_values(cfg, "index")
    check_embeddable(cfg.ckpt_path)
    if not model_file(Path(str(cfg.ckpt_path)).expanduser()).exists():
        raise LightclsError(f"ckpt_path={cfg.ckpt_path}: no such file (or run or sweep dir)")


def check_similar(cfg: DictConfig) -> None:
    """`lightcls-similar`: its values."""
    check_values(cfg, "similar")


def check_info(cfg: DictConfig) -> None:
    """`lightcls-info`: its values."""
    check_values(cfg, "info")


def search_space(node: Any, prefix: str = "") -> dict[str, dict[str, Any]]:
    """The search space as dotted train keys -> suggest arguments (a node holding `suggest` is a key)."""
    if not isinstance(node, DictConfig | dict):
        return {prefix.rstrip("."): {"suggest": None, "value": node}} if prefix else {}
    if "suggest" in node:
        return {prefix.rstrip("."): dict(OmegaConf.to_container(node, resolve=True))}
    found: dict[str, dict[str, Any]] = {}
    for key in node:
        found.update(search_space(node[key], f"{prefix}{key}."))
    return found


def _check_space_entry(key: str, entry: dict[str, Any]) -> None:
    if entry.get("suggest") not in SUGGEST:
        raise LightclsError(
            f"search.space.{key}: give suggest: {'|'.join(SUGGEST)} with its arguments "
            "(low, high[, log, step]; or choices)"
        )
    needed = ("choices",) if entry["suggest"] == "categorical" else ("low", "high")
    missing = [name for name in needed if name not in entry]
    if missing:
        raise LightclsError(f"search.space.{key}: suggest: {entry['suggest']} needs {', '.join(missing)}")
    from optuna import distributions  # its own checks: low <= high, log needs low > 0, choices not empty

    kind = {"float": "FloatDistribution", "int": "IntDistribution", "categorical": "CategoricalDistribution"}
    try:
        getattr(distributions, kind[entry["suggest"]])(**{k: v for k, v in entry.items() if k != "suggest"})
    except (TypeError, ValueError) as err:
        raise LightclsError(f"search.space.{key}: {one_line(str(err))}") from None
