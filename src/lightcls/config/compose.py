"""Where the Hydra configs live, and composition whose mistakes read as one line."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightcls.errors import LightclsError, one_line

_COULD_NOT_OVERRIDE = re.compile(r"^(?:In '[^']*': )?Could not override '([^']+)'")


def config_dir() -> Path:
    """The `conf/` folder: inside the installed package, or at the root of a source checkout."""
    packaged = Path(__file__).resolve().parents[1] / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "conf"


#: conf/ folders that are not a user's choice: what a group's options share, and Hydra's own
NOT_CHOICES = ("base", "hydra")


def config_groups() -> str:
    """`group: option, ...` lines for the config groups a user chooses from (`--help` lists them)."""
    root = config_dir()
    lines = []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in NOT_CHOICES):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        if options:
            lines.append(f"{group.name}: {', '.join(options)}")
    return "\n".join(lines)


OmegaConf.register_new_resolver("lightcls_groups", config_groups, replace=True)


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """`conf/<config_name>.yaml` with `overrides`, as the command line composes it (one-line errors)."""
    if GlobalHydra.instance().is_initialized():
        return compose_config(config_name, overrides)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name=config_name):
        return compose_config(config_name, overrides)


def compose_config(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Hydra's `compose` (call inside `initialize_config_dir`), its errors as one-line LightclsErrors."""
    try:
        return hydra_compose(config_name, overrides=list(overrides))
    except HydraException as err:
        raise LightclsError(_composition_error(err, config_name, overrides)) from None


def quote(value: Any) -> str:
    """A value as a quoted Hydra override value (paths may hold '=' or spaces)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


#: keys of earlier versions, and where their setting is now
MOVED = {
    "model.sgd_lr": "set optimizer.lr=... (a model's own SGD lr is in conf/model_optimizer/<model>_sgd.yaml)",
}


def _composition_error(err: HydraException, config_name: str, overrides: Sequence[str]) -> str:
    """Hydra's composition error as one line: the unknown option or key, the valid choices."""
    missing = err.missing_cfg_file if isinstance(err, MissingConfigException) else None
    group, _, name = (missing or "").rpartition("/")
    # an option in a list (logger=[tensorboard,mlflw]): Hydra names no options, the group's folder has them
    options = err.options if missing and err.options is not None else _group_options(group)
    if missing and options is not None:
        if group == "model":  # every torchvision architecture: too many to list in a line
            return unknown_model(name, options)
        if group:
            choices = f"; choose one of: {', '.join(options)}" if options else ""
            return f"unknown {group} {name!r}{did_you_mean(name, options)}{choices}"
    found = _COULD_NOT_OVERRIDE.match(str(err))
    if found and found.group(1) in MOVED:
        return f"{found.group(1)} is no longer a key: {MOVED[found.group(1)]}"
    if found and _folder_only(found.group(1), overrides):
        return (
            f"{found.group(1)} is a key of folder data sets (conf/base/folder.yaml), not of data=streaming: "
            "shards are read as they were packed; leave it out"
        )
    if found:
        key = found.group(1)
        hint = _did_you_mean_key(key, config_name, overrides)
        return f"unknown key {key!r}{hint}; use +{key}=... to add a new key"
    text = str(err).split("\nConfig search path:")[0]
    if isinstance(err.__cause__, OmegaConfBaseException):
        text = f"{text}: {err.__cause__}"
    return one_line(text)


def _group_options(group: str) -> list[str] | None:
    """The options of config group `group` (its folder's yaml files), or None where it is no folder."""
    folder = config_dir() / group
    return sorted(f.stem for f in folder.glob("*.yaml")) if group and folder.is_dir() else None


def _folder_only(key: str, overrides: Sequence[str]) -> bool:
    """True for a key of the folder DataModule (data.cache, ...) given with data=streaming."""
    group, _, name = key.partition(".")
    if group != "data" or "data=streaming" not in overrides:
        return False
    return name in OmegaConf.load(config_dir() / "base" / "folder.yaml")


def unknown_model(name: str, models: Sequence[str]) -> str:
    """The one line for a model name that is none of `models`: the closest names, and where all are."""
    close = close_names(name, models)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown model {name!r}{hint}; `lightcls-info models` lists them"


def close_names(name: str, choices: Sequence[str], n: int = 3) -> list[str]:
    """Up to `n` of `choices` that start with `name` (vit: vit_b_16, ...), else the closest spellings."""
    key = name.lower()
    starting = [c for c in choices if c.startswith(key)]
    return starting[:n] if starting else difflib.get_close_matches(key, list(choices), n=n, cutoff=0.6)


def did_you_mean(name: str, choices: Sequence[str], prefix: str = "") -> str:
    """` (did you mean X?)` when one of `choices` is close to `name`."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _did_you_mean_key(key: str, config_name: str, overrides: Sequence[str]) -> str:
    """The hint for a misspelled key: the closest key beside it in the config composed without it."""
    parent, _, leaf = key.rpartition(".")
    others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~").split("@")[0] != key]
    try:
        cfg = hydra_compose(config_name, overrides=others)
    except HydraException:
        return ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return ""
    return did_you_mean(leaf, [str(k) for k in node], f"{parent}." if parent else "")
