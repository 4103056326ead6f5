"""The beginner Python API (MMEdu parity): `Classifier("lenet").train(...)`, `.predict(...)`, `.load(...)`.

It composes the same Hydra configs as `python train.py` and runs the same `train` task; runs land in
`outputs/train/runs/<time>/` like the command line's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightcls.config import compose, config_dir, quote, resumed_run_dir, unique_dir
from lightcls.config.rundir import check_run_dir
from lightcls.data.annotations import find_annotation_file
from lightcls.data.layout import SPLIT_DIRS
from lightcls.errors import LightclsError
from lightcls.inference import (
    ImageInput,
    Predictor,
    collect_inputs,
    load_predictor,
    predict_files,
    results_from_probs,
)
from lightcls.models import model_lines, resolve_model

DEVICES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "auto": "auto"}


class Classifier:
    """An image classifier: train it on a split-folder data set, then predict; or load a trained one.

    MMEdu's calls work as written (`cls = Classifier`): `cls('LeNet')`, `model.num_classes = 3`,
    `model.load_dataset(path=...)`, `model.save_fold = ...`, `model.train(epochs=10, validate=True,
    checkpoint=...)`, `model.inference(image=..., show=True, checkpoint=...)`, `model.print_result()`,
    `model.load_checkpoint(checkpoint=...)` + `model.fast_inference(image=...)`, `cls.sota()`.

    Args:
        backbone: a model name from `Classifier.models()`, in any case; MMEdu's names (`LeNet`,
            `MobileNet`, `ResNet18`, ...) map to ours.
    """

    def __init__(self, backbone: str = "lenet") -> None:
        self.backbone = resolve_model(backbone)
        self.checkpoint: Path | str | None = None
        self.run_dir: Path | None = None
        self.metrics: dict[str, Any] | None = None
        self.result: dict[str, Any] | list[dict[str, Any]] | None = None
        #: MMEdu's attributes: the class count to check the data against, the data set, where a run goes
        self.num_classes: int | None = None
        self.dataset_path: Path | None = None
        self.save_fold: str | Path | None = None
        self._predictor: Predictor | None = None

    @staticmethod
    def models() -> dict[str, str]:
        """The backbones there is a config for, with a line about each."""
        return model_lines()

    sota = models  # MMEdu's `cls.sota()`

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> Classifier:
        """A trained classifier from a `.ckpt` (or an exported `.onnx`): load once, predict many times."""
        predictor = load_predictor(checkpoint, device=_device(device))
        self = cls.__new__(cls)
        cls.__init__(self, predictor.meta["model"])
        self.checkpoint, self._predictor = Path(checkpoint), predictor
        return self

    def load_dataset(self, path: str | Path) -> None:
        """The split-folder data set `train()` uses (MMEdu's `load_dataset`)."""
        self.dataset_path = Path(path)

    def train(
        self,
        data: str | Path | None = None,
        epochs: int = 10,
        lr: float | None = None,
        batch_size: int | None = None,
        device: str = "cpu",
        optimizer: str | None = None,
        validate: bool = True,
        pretrained: bool | str | None = None,
        data_config: str | None = None,
        outputs: str | Path = "outputs",
        overrides: Sequence[str] = (),
        checkpoint: str | Path | None = None,
        random_seed: int | None = None,
        save_fold: str | Path | None = None,
        metric: str = "accuracy",
        distributed: bool = False,
    ) -> dict[str, Any]:
        """Train with `python train.py`'s configs and task; return its metrics.json as a dict.

        `data` is a split-folder data set (default: `load_dataset`'s, else the embedded digits). Its config is
        `data_config`, else conf/data/<folder name>.yaml when there is one (hand_gray, digits), else `folder`.
        `checkpoint` continues training: a lightcls checkpoint with its training state is resumed up to
        `epochs` epochs in all; one that already has `epochs` (or holds weights only, or other weights) is
        the starting point of a new run. `save_fold` (or the attribute) is the run dir; by default
        `<outputs>/train/runs/<time>`. `overrides` are any further Hydra overrides, as on the command line.
        `distributed=True` (MMEdu's) trains with DDP over every GPU there is (`trainer=ddp`, each GPU a
        process); without a GPU it is one line saying so.
        """
        from lightcls.tasks.train import train
        from lightcls.workflows.runlog import python_run

        if str(metric).lower() not in ("accuracy", "acc", "top1", "top-1", "map"):
            raise LightclsError(
                f"metric={metric!r}: lightcls tracks accuracy (top-1 and top-5), or mAP for multi-label "
                "data; use 'accuracy'"
            )
        data = data if data is not None else self.dataset_path
        args = [
            f"model={self.backbone}",
            f"trainer={'gpu' if _device(device).startswith('cuda') else _device(device)}",
            f"trainer.max_epochs={int(epochs)}",
        ]
        if distributed:
            args[1:2] = ["trainer=ddp", f"trainer.devices={_gpus_for_ddp()}"]
        if data is not None:
            args += [
                f"data={data_config or _data_config(Path(data))}",
                f"data.root={quote(Path(data).resolve())}",
            ]
        elif data_config:
            args.append(f"data={data_config}")
        if optimizer:
            args.append(f"optimizer={str(optimizer).lower()}")
        if lr is not None:
            args.append(f"optimizer.lr={lr}")
        if batch_size is not None:
            args.append(f"data.batch_size={int(batch_size)}")
        if random_seed is not None:
            args.append(f"seed={int(random_seed)}")
        resume = _resumable(checkpoint, int(epochs)) if checkpoint is not None else False
        if checkpoint is not None and resume:
            args.append(f"ckpt_path={quote(Path(checkpoint).resolve())}")
        elif checkpoint is not None:
            pretrained = str(Path(checkpoint).resolve())
        if pretrained is not None:
            value = quote(pretrained) if isinstance(pretrained, (str, Path)) else str(pretrained).lower()
            args.append(f"model.pretrained={value}")
        if not validate:
            args += [
                "trainer.limit_val_batches=0",
                "callbacks.model_checkpoint.monitor=null",
                "callbacks.model_checkpoint.save_top_k=0",
            ]
        args += [f"paths.outputs_root={quote(Path(outputs).resolve())}", *overrides]

        cfg = compose("train", args)
        if self.num_classes is not None:
            self._check_num_classes(cfg)
        fold = save_fold if save_fold is not None else self.save_fold
        if fold is not None:
            run_dir = Path(fold).resolve()
        elif resume and resumed_run_dir(str(checkpoint)) is not None:
            run_dir = resumed_run_dir(str(checkpoint))
        else:
            run_dir = unique_dir(Path(str(cfg.paths.outputs_root)) / str(cfg.task_name) / "runs")
        given = str(checkpoint) if resume else None
        check_run_dir(run_dir, given, bool(cfg.get("overwrite")), remove=False)  # before .hydra/ is written
        with python_run(cfg, args, run_dir):
            self.metrics = train(cfg)
        self.run_dir = run_dir
        self.checkpoint = run_dir / (self.metrics["best_ckpt"] or self.metrics["last_ckpt"])
        self._predictor = load_predictor(self.checkpoint, device=_device(device))
        return self.metrics

    def predict(
        self,
        image: ImageInput | Sequence[ImageInput],
        topk: int = 3,
        batch_size: int = 32,
        show: bool = False,
        save_fold: str | Path | None = None,
        device: str | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Classify an image (path, numpy array, PIL image, tensor): one dict with `pred_label`,
        `pred_score`, `pred_class` and `topk` (a multi-label model's also `labels`: every class at or above
        its threshold, best first); a folder or a list gives a list of such dicts. `show=True` or
        a `save_fold` writes a copy of each image file with its class and score drawn on it (into
        `save_fold`, default `cls_result`); `device` reloads the model there (cpu, cuda)."""
        if device is not None and self.checkpoint is not None:
            self.load_checkpoint(self.checkpoint, device=device)
        predictor = self._require_predictor()
        if isinstance(image, (str, Path)) and Path(image).is_dir():
            files, _ = collect_inputs(Path(image))
            self.result = predict_files(predictor, files, batch_size, topk)[0]
        else:
            many = isinstance(image, (list, tuple))
            items = list(image) if many else [image]
            results = []
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                probs = predictor.probabilities([predictor.to_tensor(item) for item in chunk])
                for item, result in zip(
                    chunk,
                    results_from_probs(probs, predictor.classes, topk, predictor.thresholds),
                    strict=True,
                ):
                    results.append({"file": str(item), **result} if isinstance(item, (str, Path)) else result)
            self.result = results if many else results[0]
        if show or save_fold is not None:
            self._annotate(Path(save_fold if save_fold is not None else "cls_result"))
        return self.result

    def embed(self, image: ImageInput | Sequence[ImageInput], batch_size: int = 32) -> np.ndarray:
        """The model's penultimate features of an image (path, numpy array, PIL image, tensor), a list of
        them or a folder (its images in sorted order): (N, D) float32 rows of length 1, whose inner product
        is their cosine similarity; needs a `.ckpt` (an exported model gives class scores only)."""
        from lightcls.inference.embed import checkpoint_predictor, embed, embed_files

        predictor = checkpoint_predictor(self._require_predictor(), self.checkpoint)
        if isinstance(image, (str, Path)) and Path(image).is_dir():
            files, skipped = collect_inputs(Path(image))
            return embed_files(predictor, files, batch_size, skipped)[0]
        items = list(image) if isinstance(image, (list, tuple)) else [image]
        chunks = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
        return np.concatenate([embed(predictor, [predictor.to_tensor(i) for i in c]).numpy() for c in chunks])

    def load_checkpoint(self, checkpoint: str | Path | None = None, device: str = "cpu") -> None:
        """Load a trained model once for `fast_inference` / `predict` (MMEdu's `load_checkpoint`)."""
        checkpoint = checkpoint if checkpoint is not None else self.checkpoint
        if checkpoint is None:
            raise LightclsError("load_checkpoint: pass checkpoint=... (a .ckpt or an exported .onnx)")
        self._predictor = load_predictor(checkpoint, device=_device(device))
        self.checkpoint = Path(checkpoint)

    def inference(
        self,
        image: ImageInput | Sequence[ImageInput] | None = None,
        show: bool = True,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        save_fold: str | Path = "cls_result",
    ) -> list[dict[str, Any]]:
        """MMEdu's `inference`: load `checkpoint` (or `self.checkpoint`), classify, and with `show` save the
        annotated images into `save_fold`; a list of result dicts, as MMEdu returns."""
        if checkpoint is not None or self._predictor is None:
            self.load_checkpoint(checkpoint, device=device)
        return self.fast_inference(image, show=show, save_fold=save_fold)

    def fast_inference(
        self,
        image: ImageInput | Sequence[ImageInput] | None = None,
        show: bool = False,
        save_fold: str | Path = "cls_result",
    ) -> list[dict[str, Any]]:
        """MMEdu's `fast_inference`: `predict` with the model `load_checkpoint` loaded."""
        if image is None:
            raise LightclsError("inference: pass image=... (an image file, a folder, or an array)")
        result = self.predict(image, show=show, save_fold=save_fold if show else None)
        return result if isinstance(result, list) else [result]

    def evaluate(
        self,
        data: str | Path | None = None,
        split: str = "test",
        outputs: str | Path = "outputs",
        overrides: Sequence[str] = (),
    ) -> dict[str, Any]:
        """`lightcls-eval` on this classifier's checkpoint (its own data set, or `data`); its metrics."""
        from lightcls.tasks.evaluate import evaluate

        args = [f"ckpt_path={quote(Path(str(self._require_checkpoint())).resolve())}", f"split={split}"]
        if data is not None:
            args.append(f"data.root={quote(Path(data).resolve())}")
        return evaluate(self._task_config("eval", args, outputs, overrides))

    def convert(
        self,
        checkpoint: str | Path | None = None,
        out_file: str | Path = "model.onnx",
        backend: str = "onnx",
        fp16: bool = False,
    ) -> dict[str, Any]:
        """MMEdu's `model.convert(checkpoint=..., out_file=...)`: `export` to `out_file` (an .onnx, or a .pt
        for TorchScript), with the contract `.json` beside it."""
        from lightcls.tasks.export import export

        out = Path(out_file).expanduser().resolve()
        fmt = "torchscript" if out.suffix.lower() == ".pt" else str(backend).lower()
        ckpt = checkpoint if checkpoint is not None else self._require_checkpoint()
        args = [f"ckpt_path={quote(Path(str(ckpt)).resolve())}", f"format={fmt}", f"fp16={str(fp16).lower()}"]
        args += [f"save_dir={quote(out.parent)}", f"name={quote(out.stem)}"]
        return export(self._task_config("export", args, "outputs", ()))

    def export(
        self,
        format: str = "onnx",
        outputs: str | Path = "outputs",
        overrides: Sequence[str] = (),
        fp16: bool = False,
    ) -> dict[str, Any]:
        """`lightcls-export` of this classifier's checkpoint: model file, contract, parity check."""
        from lightcls.tasks.export import export

        ckpt = quote(Path(str(self._require_checkpoint())).resolve())
        args = [f"ckpt_path={ckpt}", f"format={format}", f"fp16={str(fp16).lower()}"]
        return export(self._task_config("export", args, outputs, overrides))

    def serve(
        self,
        port: int = 8000,
        host: str = "127.0.0.1",
        outputs: str | Path = "outputs",
        overrides: Sequence[str] = (),
    ) -> dict[str, Any]:
        """`lightcls-serve` of this classifier's checkpoint: answers HTTP requests (`POST /predict`, a page
        at `/`) until Ctrl-C."""
        from lightcls.tasks.serve import serve

        ckpt = quote(Path(str(self._require_checkpoint())).resolve())
        args = [f"ckpt_path={ckpt}", f"port={int(port)}", f"host={quote(host)}"]
        return serve(self._task_config("serve", args, outputs, overrides))

    def explain(
        self,
        image: ImageInput | Sequence[ImageInput],
        method: str = "gradcam",
        target: str = "pred",
        layer: str | None = None,
        topk: int = 3,
    ) -> list[Any]:
        """Where the model looks (`lightcls-explain`): per image an Explanation with `cam` (H, W heat map
        in [0, 1]), `image`, `target`, `topk` and `overlay()` (the map over the image, uint8 RGB)."""
        from lightcls.inference.explain import explain
        from lightcls.training import ClassificationModule

        predictor = self._require_predictor()
        module = ClassificationModule.from_checkpoint(self._require_checkpoint())
        images = image if isinstance(image, (list, tuple)) else [image]
        return explain(module, [predictor.to_tensor(i) for i in images], method, target, layer, topk)[1]

    def report(self, run_dir: str | Path | None = None) -> Path:
        """report.html for this classifier's training run (or `run_dir`); returns its path."""
        from lightcls.workflows.page import build_report

        folder = run_dir if run_dir is not None else self.run_dir
        if folder is None:
            raise LightclsError("no run to report on yet: call train(...) first, or pass run_dir=")
        return build_report(folder)

    def print_result(self, result: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        """Print a prediction (by default the last one) as a table."""
        from lightcls.tasks.predict import print_results

        result = self.result if result is None else result
        if result is None:
            raise LightclsError("nothing to print yet: call predict(...) first")
        print_results(result if isinstance(result, list) else [result], [], None, rows=len(result) + 1)

    @property
    def classes(self) -> list[str]:
        """Class names of the trained model; index i is label i."""
        return self._require_predictor().classes

    def _task_config(self, name: str, args: list[str], outputs: str | Path, overrides: Sequence[str]) -> Any:
        cfg = compose(name, [*args, f"paths.outputs_root={quote(Path(outputs).resolve())}", *overrides])
        cfg.paths.output_dir = str(unique_dir(Path(str(cfg.paths.outputs_root)) / name / "runs"))
        return cfg

    def _annotate(self, folder: Path) -> None:
        from lightcls.evaluation.annotate import annotate

        results = self.result if isinstance(self.result, list) else [self.result]
        for result in results:
            if result and "file" in result:
                annotate(Path(result["file"]), result, folder / Path(result["file"]).stem)

    def _check_num_classes(self, cfg: Any) -> None:
        from lightcls.workflows.build import build_datamodule

        found = len(build_datamodule(cfg).classes)
        if found != self.num_classes:
            raise LightclsError(f"num_classes={self.num_classes}, but the data set has {found} classes")

    def _require_checkpoint(self) -> Path | str:
        if self.checkpoint is None:
            raise LightclsError("no checkpoint: call train(...) or Classifier.load(ckpt) first")
        return self.checkpoint

    def _require_predictor(self) -> Predictor:
        if self._predictor is None:
            if self.checkpoint is not None:
                self.load_checkpoint(self.checkpoint)
                return self._predictor  # type: ignore[return-value]
            raise LightclsError(
                "this Classifier is not trained: call train(...) or Classifier.load(ckpt) first"
            )
        return self._predictor

    def __repr__(self) -> str:
        return (
            f"Classifier({self.backbone!r}, checkpoint={str(self.checkpoint) if self.checkpoint else None!r})"
        )


def _device(name: str) -> str:
    """`cpu`, `gpu`/`cuda`/`cuda:0`, or `auto`, as a predictor and trainer name it; others are one line."""
    key = str(name).lower()
    if key in DEVICES or key.startswith("cuda:"):
        return key if key.startswith("cuda:") else DEVICES[key]
    raise LightclsError(f"device={name!r}: choose one of {', '.join(DEVICES)}")


def _gpus_for_ddp() -> int:
    """How many GPUs DDP trains on (MMEdu's `distributed=True`): all of them; none is one line."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        raise LightclsError(
            "distributed=True trains on several GPUs (DDP) and this machine has none; leave it out to train "
            "on the CPU, or use overrides=['trainer=ddp_cpu'] for DDP over CPU processes"
        )
    return count


def _resumable(checkpoint: str | Path, epochs: int) -> bool:
    """True when `checkpoint` is a lightcls checkpoint with training state and fewer than `epochs` epochs."""
    from lightcls.ckpt import load_checkpoint

    ckpt = load_checkpoint(checkpoint, what="checkpoint")
    full = "optimizer_states" in ckpt and "loops" in ckpt and isinstance(ckpt.get("hyper_parameters"), dict)
    return full and int(ckpt.get("epoch", 0)) + 1 < epochs


def _data_config(root: Path) -> str:
    """conf/data/<name>.yaml when the data set's folder has a config's name; `multilabel` for images with
    annotation files beside them (train.csv, train.json, ...: their format says the task); else `folder`."""
    if (config_dir() / "data" / f"{root.name}.yaml").is_file():
        return root.name
    folders = any((root / name).is_dir() for names in SPLIT_DIRS.values() for name in names)
    return "multilabel" if not folders and find_annotation_file(root, "train") else "folder"
