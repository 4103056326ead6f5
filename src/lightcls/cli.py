"""Console entry points: thin `@hydra.main` shells around the tasks."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hydra
from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from lightcls.config import config_dir, forget_run_dirs, register_resolvers
from lightcls.errors import Interrupted, LightclsError, one_line
from lightcls.validation import check_command

register_resolvers()
CONFIG_DIR = str(config_dir())


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run `task`; a user's mistake ends the process with one line on stderr and exit code 2."""
    try:
        with _user_mistakes():
            return task(cfg)
    except Interrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    finally:
        forget_run_dirs()


@contextmanager
def _user_mistakes() -> Iterator[None]:
    """A user's mistake raised inside ends the process with one line on stderr and exit code 2."""
    try:
        yield
    except (LightclsError, MisconfigurationException) as err:
        _fail(str(err))
    except InstantiationException as err:
        if isinstance(err.__cause__, LightclsError):  # the object's own check of its arguments
            _fail(str(err.__cause__))
        key = str(err).rpartition("full_key: ")[2].strip()
        _fail(f"cannot build {key or 'an object'} from the config: {err.__cause__ or err}")


def _fail(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.exit(2)


def _checked(config_name: str, main: Callable[..., Any]) -> Callable[..., Any]:
    """`main` (a `@hydra.main` shell) after the command line is composed and checked once (validation.py)."""

    @functools.wraps(main)
    def entry(*args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # a config passed in (Hydra's cfg_passthrough) is not the command line's
            with _user_mistakes():
                check_command(config_name, sys.argv[1:])
        return main(*args, **kwargs)

    return entry


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _train(cfg: DictConfig) -> float | None:
    """`lightcls-train` / `python train.py`: returns best val top-1, the objective for sweepers."""
    from lightcls.tasks import train as train_task

    return run_task(train_task, cfg)["best_val_top1"]


train = _checked("train", _train)


def _command(config_name: str, task: str) -> Callable[[], Any]:
    """A console command: Hydra composes `conf/<config_name>.yaml`, then runs `module:function` on it."""
    module_name, _, function = task.partition(":")

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def main(cfg: DictConfig) -> Any:
        return run_task(getattr(importlib.import_module(module_name), function), cfg)

    return _checked(config_name, main)


#: `lightcls-eval ckpt_path=... [data=NAME data.root=...] [split=val|test]`
evaluate = _command("eval", "lightcls.tasks.evaluate:evaluate")
#: `lightcls-predict ckpt_path=model.ckpt|model.onnx input=IMG_OR_DIR [topk=3] [save_dir=...]`
predict = _command("predict", "lightcls.tasks.predict:predict")
#: `lightcls-export ckpt_path=... format=onnx|torchscript [dynamic_batch=true]`
export = _command("export", "lightcls.tasks.export:export")
#: `lightcls-info ckpt_path=...` or `lightcls-info model=NAME`: parameters, FLOPs, classes, input
info = _command("info", "lightcls.tasks.info:info")
