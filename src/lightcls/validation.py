"""Config mistakes found before a run starts: one line naming the key, with the valid choices."""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import (
    HydraException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from lightcls.config import config_dir
from lightcls.errors import LightclsError, one_line

#: a multirun sweep composes once per swept value, up to this many times (the jobs check themselves too)
MAX_SWEEP_CHECKS = 32
_COULD_NOT_OVERRIDE = re.compile(r"^(?:In '[^']*': )?Could not override '([^']+)'")
#: words an optimizer's own error uses for a config key
_OPTIMIZER_WORDS = {"lr": "learning rate", "eps": "epsilon", "betas": "beta"}


def check_command(config_name: str, argv: Sequence[str]) -> None:
    """Compose `config_name` with a command line's overrides as Hydra will and check the values (one-line
    LightclsError on a mistake); Hydra's own flags (--help, --info, --config-*, ...) are left alone."""
    args = _hydra_args(argv)
    if args is None:
        return
    check_values = VALUE_CHECKS.get(config_name) if not args.cfg else None
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name=config_name):
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        try:
            overrides = parser.parse_overrides(list(args.overrides))
        except OverrideParseException as err:
            raise LightclsError(f"cannot parse {err.override!r}: {one_line(err.message)}") from None
        for variant in _variants([o for o in overrides if not o.is_hydra_override()], args.multirun):
            cfg = compose_config(config_name, variant)
            if check_values is not None:
                with contextlib.suppress(InterpolationResolutionError):  # needs the run's Hydra context:
                    check_values(cfg)  # the task checks again when it starts


def compose_config(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Hydra's `compose` (call inside `initialize_config_dir`), its errors as one-line LightclsErrors."""
    try:
        return compose(config_name, overrides=list(overrides))
    except HydraException as err:
        raise LightclsError(_composition_error(err, config_name, overrides)) from None


def check_train_config(cfg: DictConfig) -> None:
    """The train config's values that would fail late, deep in torch, or start too many processes."""
    check_optimizer(cfg.optimizer)
    check_max_epochs(cfg.trainer.get("max_epochs"))
    devices = cfg.trainer.get("devices", "auto")
    devices = OmegaConf.to_container(devices) if isinstance(devices, ListConfig) else devices
    check_devices(cfg.trainer.get("accelerator", "auto"), devices)


def _check_train_command(cfg: DictConfig) -> None:
    """Before the run: the data module's own argument checks too (the task builds it first thing)."""
    try:
        instantiate(cfg.data)
    except InstantiationException as err:
        raise err.__cause__ if isinstance(err.__cause__, LightclsError) else err from None
    check_train_config(cfg)


#: value checks per config, run by `check_command` on every composed variant
VALUE_CHECKS: dict[str, Callable[[DictConfig], None]] = {"train": _check_train_command}


def check_optimizer(node: DictConfig) -> None:
    """Build the optimizer once on a dummy parameter, so its own checks run; the lr must also be > 0."""
    import torch

    lr = node.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))):
        raise LightclsError(f"optimizer.lr must be a number > 0, got {lr!r}")
    try:
        instantiate(node)([torch.nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise LightclsError(f"{_optimizer_key(node, str(err))}: {err}") from None
    if lr is not None and lr <= 0:
        raise LightclsError(f"optimizer.lr must be > 0, got {lr}")


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


def _composition_error(err: HydraException, config_name: str, overrides: Sequence[str]) -> str:
    """Hydra's composition error as one line: the unknown option or key, the valid choices."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options is not None:
        group, _, name = err.missing_cfg_file.rpartition("/")
        if group:
            choices = f"; choose one of: {', '.join(err.options)}" if err.options else ""
            return f"unknown {group} {name!r}{_did_you_mean(name, err.options)}{choices}"
    found = _COULD_NOT_OVERRIDE.match(str(err))
    if found:
        key = found.group(1)
        hint = _did_you_mean_key(key, config_name, overrides)
        return f"unknown key {key!r}{hint}; use +{key}=... to add a new key"
    text = str(err).split("\nConfig search path:")[0]
    if isinstance(err.__cause__, OmegaConfBaseException):
        text = f"{text}: {err.__cause__}"
    return one_line(text)


def _did_you_mean(name: str, choices: Sequence[str], prefix: str = "") -> str:
    """` (did you mean X?)` when one of `choices` is close to `name`."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _did_you_mean_key(key: str, config_name: str, overrides: Sequence[str]) -> str:
    """The hint for a misspelled key: the closest key beside it in the config composed without it."""
    parent, _, leaf = key.rpartition(".")
    others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~").split("@")[0] != key]
    try:
        cfg = compose(config_name, overrides=others)
    except HydraException:
        return ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return ""
    return _did_you_mean(leaf, [str(k) for k in node], f"{parent}." if parent else "")


def _optimizer_key(node: DictConfig, message: str) -> str:
    """`optimizer.KEY=VALUE` for the key an optimizer's error message is about, else `optimizer`."""
    text = message.lower()
    for key in map(str, node):
        if not key.startswith("_") and (key in text or _OPTIMIZER_WORDS.get(key, "\0") in text):
            return f"optimizer.{key}={node[key]}"
    return "optimizer"
