"""Console entry points: thin `@hydra.main` shells around the tasks, made by one factory."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from lightcls.config import config_dir, run_dir_overrides
from lightcls.config.checks import check_command
from lightcls.errors import Interrupted, LightclsError, one_line

CONFIG_DIR = str(config_dir())


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run `task`; a user's mistake ends the process with one line on stderr and exit code 2."""
    try:
        with _user_mistakes():
            return task(cfg)
    except Interrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)


@contextmanager
def _user_mistakes() -> Iterator[None]:
    """A user's mistake raised inside ends the process with one line on stderr and exit code 2."""
    try:
        yield
    except LightclsError as err:
        _fail(str(err))
    except InstantiationException as err:
        if isinstance(err.__cause__, LightclsError):  # the object's own check of its arguments
            _fail(str(err.__cause__))
        key = str(err).rpartition("full_key: ")[2].strip()
        _fail(f"cannot build {key or 'an object'} from the config: {err.__cause__ or err}")
    except Exception as err:
        if "lightning" in sys.modules:  # imported only once Lightning is: an early mistake stays fast
            from lightning.fabric.utilities.exceptions import MisconfigurationException

            if isinstance(err, MisconfigurationException):
                _fail(str(err))
        raise


def _fail(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.exit(2)


def _load(target: str) -> Callable[..., Any]:
    """`module:function` imported on use (so `--help` and config mistakes never import the tasks)."""
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def command(
    config_name: str, task: str, check: str | None = None, objective: str | None = None
) -> Callable[[], Any]:
    """A console command: the command line is composed and checked once (`check`, a `module:function`
    on the composed config), given its run dir, then Hydra runs the `task` function on it and returns
    its result (or the result's `objective` key: what a Hydra sweeper optimizes)."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def main(cfg: DictConfig) -> Any:
        result = run_task(_load(task), cfg)
        return result.get(objective) if objective else result

    @functools.wraps(main)
    def entry(*args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # a config passed in (Hydra's cfg_passthrough) is not the command line's
            argv = sys.argv[1:]
            with _user_mistakes():
                checks = (lambda cfg: _load(check)(cfg)) if check else None  # imported after composition
                checked = check_command(config_name, argv, checks)
                if checked is not None:
                    cfg, multirun = checked
                    sys.argv += run_dir_overrides(cfg, argv, multirun)
        return main(*args, **kwargs)

    return entry


#: `lightcls-train` / `python train.py [overrides]`
train = command(
    "train",
    "lightcls.tasks.train:train",
    check="lightcls.tasks.train:check_command",
    objective="best_val_top1",
)
#: `lightcls-eval ckpt_path=... [data=NAME data.root=...] [split=val|test]`
evaluate = command("eval", "lightcls.tasks.evaluate:evaluate", check="lightcls.tasks.evaluate:check_command")
#: `lightcls-predict ckpt_path=model.ckpt|model.onnx input=IMG_OR_DIR [topk=3] [save_dir=...]`
predict = command("predict", "lightcls.tasks.predict:predict")
#: `lightcls-export ckpt_path=... format=onnx|torchscript [dynamic_batch=true]`
export = command("export", "lightcls.tasks.export:export")
#: `lightcls-info ckpt_path=...` or `lightcls-info model=NAME`: parameters, FLOPs, classes, input
info = command("info", "lightcls.tasks.info:info")
#: `lightcls-search [search=lr_batch] [train overrides]`: an Optuna study of training runs, pruned early
search = command("search", "lightcls.tasks.search:search", check="lightcls.tasks.search:check_command")
