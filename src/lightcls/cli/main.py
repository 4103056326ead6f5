"""Console entry points: thin `@hydra.main` shells around the tasks, made by one factory."""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from lightcls.config import clock, config_dir, run_dir_overrides
from lightcls.config.checks import check_command
from lightcls.config.rundir import FAILED_FILE
from lightcls.errors import Interrupted, LightclsError, machine_refusal, one_line
from lightcls.files import write_text

CONFIG_DIR = str(config_dir())


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run `task`; a user's mistake ends the process with one line on stderr and exit code 2, or, in a
    job of a multirun, ends that job (marked failed in its dir) and the sweep goes on to the next."""
    try:
        with _user_mistakes():
            return task(cfg)
    except _Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
            sys.exit(2)
        job_dir = Path(HydraConfig.get().runtime.output_dir)
        write_text(job_dir / FAILED_FILE, f"{refused}\n")
        return {}
    except Interrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:  # outside training (which saves a checkpoint first): nothing to resume
        print("interrupted: Ctrl-C", file=sys.stderr)
        sys.exit(130)


@contextmanager
def _user_mistakes() -> Iterator[None]:
    """A user's mistake raised inside ends the process with one line on stderr and exit code 2."""
    try:
        yield
    except LightclsError as err:
        _fail(str(err))
    except OSError as err:
        if machine_refusal(err) is None:
            raise
        _fail(machine_refusal(err))
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


def share_machine(cfg: DictConfig) -> None:
    """A job of a parallel local sweep (Hydra's joblib launcher, n_jobs at once) takes its share of the
    CPU threads, and on a machine with several GPUs its own GPU (job i: GPU i mod count)."""
    hydra_cfg = HydraConfig.get()
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if hydra_cfg.mode != RunMode.MULTIRUN or "Joblib" not in launcher:
        return
    import torch

    standard = multiprocessing.get_all_start_methods()  # the platform's default first
    if multiprocessing.get_start_method(allow_none=True) not in standard:  # loky's own, in a joblib worker:
        multiprocessing.set_start_method(standard[0], force=True)  # DataLoader workers cannot start with it
    cores = os.cpu_count() or 1
    n_jobs = int(hydra_cfg.launcher.get("n_jobs") or 1)
    n_jobs = min(cores, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)  # joblib: -1 is every core
    torch.set_num_threads(max(1, cores // max(1, n_jobs)))
    logging.getLogger(__name__).info(
        "joblib launcher, %d jobs at once: this job uses %d of %d CPU threads",
        n_jobs,
        torch.get_num_threads(),
        cores,
    )
    gpus = torch.cuda.device_count()
    trainer = cfg.get("trainer")
    one_gpu = trainer is not None and trainer.get("devices") in (1, "1", "auto")
    if gpus > 1 and one_gpu and trainer.get("accelerator") in ("gpu", "cuda", "auto"):
        with open_dict(cfg):
            trainer.devices = [hydra_cfg.job.num % gpus]


def _checked_run_dir(config_name: str, check: str, argv: list[str]) -> list[str]:
    """The command line composed and checked once (`check`: a `module:function` on the composed config),
    then the overrides that give the command its run dir."""
    with _user_mistakes():
        checks = lambda cfg: _load(check)(cfg)  # noqa: E731 - imported after composition
        checked = check_command(config_name, argv, checks)
        if checked is None:
            return []
        cfg, multirun = checked
        if OmegaConf.select(cfg, "ckpt_path", default=None):  # a sweep dir: its best run's
            from lightcls.ckpt import best_of_sweep  # torch: only once the config is sound

            cfg.ckpt_path = str(best_of_sweep(Path(str(cfg.ckpt_path)).expanduser()))
        return run_dir_overrides(cfg, argv, multirun)


class _Refused(Exception):
    """A user's mistake, as the one line that says it."""


def _fail(message: str) -> None:
    raise _Refused(one_line(message)) from None


def _load(target: str) -> Callable[..., Any]:
    """`module:function` imported on use (so `--help` and config mistakes never import the tasks)."""
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def command(config_name: str, task: str, objective: str | None = None) -> Callable[[], Any]:
    """A console command: the command line is composed and checked once (lightcls.workflows.checks'
    `check_<config_name>`), given its run dir, then Hydra runs the `task` function on it and returns its
    result (or the result's `objective` key: what a Hydra sweeper optimizes)."""
    check = f"lightcls.workflows.checks:check_{config_name}"

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def main(cfg: DictConfig) -> Any:
        share_machine(cfg)
        function = _load(task)
        imported()
        result = run_task(function, cfg)
        if not objective:
            return result
        from lightcls.evaluation.runs import objective_value

        return objective_value(result, objective)

    @functools.wraps(main)
    def entry(*args: Any, **kwargs: Any) -> Any:
        if args or kwargs:  # a config passed in (Hydra's cfg_passthrough) is not the command line's
            return main(*args, **kwargs)
        clock.count_from_process_start()
        gc.disable()  # while importing (torch, Lightning: millions of objects, no garbage) until `imported`
        try:
            sys.argv += _checked_run_dir(config_name, check, sys.argv[1:])
        except _Refused as refused:
            gc.enable()
            print(f"error: {refused}", file=sys.stderr)
            sys.exit(2)
        except BaseException:
            gc.enable()
            raise
        try:
            main()
        except SystemExit as stop:
            leave(stop.code)
        finally:
            gc.enable()
        leave(0)

    return entry


def imported() -> None:
    """The task's imports are done: what they made is moved out of the garbage collector's view (each full
    collection walked it all: about 1 s of a resnet18 run) and collection resumes for the task's objects."""
    gc.freeze()
    gc.enable()


def leave(code: Any) -> NoReturn:
    """End the command: its threads finish and atexit runs (loggers flush, DataLoader workers stop), then
    the process exits without tearing down every imported module, about 1 s once torch is loaded."""
    if "torch" not in sys.modules:  # nothing slow to tear down (--help, a mistake found early)
        sys.exit(code)
    if code is not None and not isinstance(code, int):  # as sys.exit does with a message
        print(code, file=sys.stderr)
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter runs first as it ends:
    if shutdown is not None:  # threading's exit hooks (executors shut down), then it joins the threads
        shutdown()
    else:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


#: `lightcls-train` / `python train.py [overrides]`
train = command("train", "lightcls.tasks.train:train", objective="best_val_top1")
#: `lightcls-eval ckpt_path=... [data=NAME data.root=...] [split=val|test]`
evaluate = command("eval", "lightcls.tasks.evaluate:evaluate")
#: `lightcls-predict ckpt_path=model.ckpt|model.onnx input=IMG_OR_DIR [topk=3] [save_dir=...]`
predict = command("predict", "lightcls.tasks.predict:predict")
#: `lightcls-export ckpt_path=... format=onnx|torchscript [dynamic_batch=true]`
export = command("export", "lightcls.tasks.export:export")
_info = command("info", "lightcls.tasks.info:info")


def info() -> Any:
    """`lightcls-info ckpt_path=...` or `lightcls-info model=NAME`: parameters, FLOPs, classes, input;
    `lightcls-info models [image_size=32] [family=resnet]`: every model, with its family, size and weights."""
    if sys.argv[1:2] == ["models"]:
        sys.argv[1:2] = ["list=models"]
    return _info()


#: `lightcls-search [search=lr_batch] [train overrides]`: an Optuna study of training runs, pruned early
search = command("search", "lightcls.tasks.search:search")
#: `lightcls-explain ckpt_path=... input=IMG_OR_DIR [method=gradcam] [target=pred|CLASS] [layer=NAME]`
explain = command("explain", "lightcls.tasks.explain:explain_images")
#: `lightcls-serve ckpt_path=... [host=127.0.0.1] [port=8000] [max_batch_size=16] [api_key=...]`
serve = command("serve", "lightcls.tasks.serve:serve")
#: `lightcls-index ckpt_path=... input=DIR [evaluate=true] [k=5] [approximate_above=100000]`
index = command("index", "lightcls.tasks.index:index")
#: `lightcls-similar index=DIR query=IMG_OR_DIR [k=5] [ckpt_path=...]`
similar = command("similar", "lightcls.tasks.similar:similar")
