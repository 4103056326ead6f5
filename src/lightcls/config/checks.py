"""Config mistakes found before a run starts: one line naming the key, with the valid choices."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Sequence
from typing import Any

from hydra import initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from lightcls.config.compose import compose_config, config_dir, did_you_mean
from lightcls.config.values import check_values
from lightcls.errors import LightclsError, one_line

#: a multirun sweep composes once per swept value, up to this many times (the jobs check themselves too)
MAX_SWEEP_CHECKS = 32
#: groups whose keys go on to a library's constructor, so `+group.key=...` may add one no lightcls code reads
PASS_THROUGH = ("trainer", "callbacks", "logger", "optimizer", "scheduler")


@contextlib.contextmanager
def _initialized(job_name: str):
    """Hydra initialized on conf/ for the block (left as it was found)."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name=job_name):
        yield


def check_command(
    config_name: str, argv: Sequence[str], check_task: Callable[[DictConfig], None] | None = None
) -> tuple[DictConfig, bool] | None:
    """Compose `config_name` with a command line's overrides as Hydra will and check every variant: the
    values its rules name (lightcls.config.values), then `check_task` (one-line LightclsError on a
    mistake); return the first composed config and whether it is a multirun. None when Hydra is asked for
    something other than a run (--help, --cfg, ...)."""
    args = _hydra_args(argv)
    if args is None:
        return None
    if args.cfg:  # --cfg prints the config: composition is checked, values are not
        check_task = None
    with _initialized(config_name):
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        try:
            overrides = parser.parse_overrides(list(args.overrides))
        except OverrideParseException as err:
            raise LightclsError(f"cannot parse {err.override!r}: {one_line(err.message)}") from None
        for override in overrides:
            if override.is_add() and not override.is_hydra_override():
                _check_added_key(config_name, override.key_or_group, [o.input_line for o in overrides])
        first = None
        for variant in _variants([o for o in overrides if not o.is_hydra_override()], args.multirun):
            cfg = compose_config(config_name, variant)
            missing = _missing(cfg)
            if missing:
                raise LightclsError(f"{missing[0]} is required: pass {missing[0]}=...")
            first = cfg if first is None else first
            if not args.cfg:
                check_composed(cfg, config_name, check_task)
    return None if args.cfg else (first, bool(args.multirun))


def check_composed(
    cfg: DictConfig, config_name: str, check_task: Callable[[DictConfig], None] | None = None
) -> None:
    """A composed `config_name`: the values its rules name, then `check_task` (one-line LightclsErrors)."""
    check_values(cfg, config_name)
    if check_task is not None:
        with contextlib.suppress(InterpolationResolutionError):  # needs the run's Hydra context:
            check_task(cfg)  # the task checks again when it starts


def _check_added_key(config_name: str, key: str, overrides: list[str]) -> None:
    """`+key=...` is refused unless a library reads it (PASS_THROUGH): no lightcls code would."""
    if key.split(".")[0] in PASS_THROUGH:
        return
    others = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != key]
    cfg = compose_config(config_name, others)
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    keys = [str(k) for k in node] if isinstance(node, DictConfig) else []
    hint = did_you_mean(leaf, keys, f"{parent}." if parent else "")
    groups = ", ".join(f"{g}.*" for g in PASS_THROUGH)
    raise LightclsError(
        f"unknown key {key!r}{hint}: no lightcls command reads it (only {groups} pass new keys to a library)"
    )


def _missing(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys left `???` (required), without resolving any interpolation."""
    found = []
    for key in node:
        if OmegaConf.is_missing(node, key):
            found.append(f"{prefix}{key}")
        else:
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not child._is_interpolation():
                found += _missing(child, f"{prefix}{key}.")
    return found


def trainer_devices(cfg: DictConfig) -> Any:
    """`trainer.devices` as plain data."""
    devices = cfg.trainer.get("devices", "auto")
    return OmegaConf.to_container(devices) if isinstance(devices, ListConfig) else devices


def check_kinds(cfg: DictConfig, flags: Sequence[str] = (), counts: Sequence[str] = ()) -> None:
    """Switches are true or false and counts whole numbers >= 0 (a yaml `maybe` would read as true)."""
    for key in flags:
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, bool):
            raise LightclsError(f"{key}={value}: give true or false")
    for key in counts:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LightclsError(f"{key}={value}: give a whole number >= 0")


def check_max_epochs(max_epochs: Any) -> None:
    """A finite number of epochs >= 1: the lr schedule spans them (Lightning's -1, no end, is refused)."""
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        why = " (-1, training without end, is not supported: the lr schedule spans max_epochs)"
        raise LightclsError(
            f"trainer.max_epochs must be a whole number >= 1, got {max_epochs!r}"
            f"{why if max_epochs == -1 else ''}"
        )


def check_devices(accelerator: Any, devices: Any) -> None:
    """No more devices than the machine has (on the CPU each is a process); a GPU run needs a GPU."""
    from lightning.fabric.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    if not isinstance(accelerator, str):
        return  # an Accelerator object: Lightning checks it
    kind = accelerator.lower()
    if kind == "auto":
        kind = "mps" if MPSAccelerator.is_available() else "cuda" if CUDAAccelerator.is_available() else "cpu"
    elif kind == "gpu":
        kind = "mps" if MPSAccelerator.is_available() else "cuda"
    if devices == "auto" or kind not in ("cpu", "cuda", "mps"):
        return
    if kind == "cpu":
        try:
            processes = CPUAccelerator.parse_devices(devices)
        except (TypeError, ValueError, MisconfigurationException) as err:
            raise LightclsError(f"trainer.devices={devices}: {one_line(str(err))}") from None
        cpus = os.cpu_count() or 1
        if processes > cpus:
            raise LightclsError(
                f"trainer.devices={devices} but this machine has {cpus} CPU{'s' * (cpus != 1)} (each CPU "
                f"device is a process); use trainer.devices={cpus} or fewer"
            )
        return
    gpu = CUDAAccelerator if kind == "cuda" else MPSAccelerator
    gpus = gpu.auto_device_count() if gpu.is_available() else 0
    if gpus == 0:
        raise LightclsError(
            f"trainer.accelerator={accelerator} but this machine has no GPU; use trainer=cpu or trainer=auto"
        )
    wanted = int(devices) if isinstance(devices, str) and devices.strip().isdigit() else devices
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > gpus:
        raise LightclsError(f"trainer.devices={devices} but this machine has {gpus} GPU{'s' * (gpus != 1)}")
    try:
        ids = gpu.parse_devices(devices)
    except (TypeError, ValueError, MisconfigurationException) as err:
        raise LightclsError(f"trainer.devices={devices}: {one_line(str(err))}") from None
    if not ids:
        raise LightclsError(f"trainer.devices={devices} asks for no GPU; use trainer=cpu")


def _hydra_args(argv: Sequence[str]) -> Any:
    """Hydra's own reading of the command line; None when Hydra is asked for something other than a run."""
    if "--version" in argv:
        return None
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            args = get_args_parser().parse_args(list(argv))
        except SystemExit:  # a malformed flag: Hydra's parser says so itself
            return None
    elsewhere = (args.config_path, args.config_name, args.config_dir, args.experimental_rerun)
    if args.help or args.hydra_help or args.info or args.shell_completion or any(elsewhere):
        return None
    return args


def _variants(overrides: list[Override], multirun: bool) -> list[list[str]]:
    """The override lists to compose: the command line as given, or for a sweep its first job plus one
    job per other swept value (each value is checked, not every combination)."""
    if not multirun:
        return [[o.input_line for o in overrides]]
    choices = []
    for override in overrides:
        if override.is_discrete_sweep():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        elif not override.is_sweep_override():  # an interval is for its sweeper plugin to sample
            choices.append([override.input_line])
    choices = [values for values in choices if values]
    first = [values[0] for values in choices]
    variants = [first]
    for i, values in enumerate(choices):
        variants += [[*first[:i], value, *first[i + 1 :]] for value in values[1:]]
    return variants[:MAX_SWEEP_CHECKS]
