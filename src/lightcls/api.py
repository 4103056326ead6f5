"""The beginner Python API (MMEdu parity): `Classifier("lenet").train(...)`, `.predict(...)`, `.load(...)`.

It composes the same Hydra configs as `python train.py` and runs the same `train` task; runs land in
`outputs/train/runs/<time>/` like the command line's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lightcls.config import compose, config_dir, quote, unique_dir
from lightcls.errors import LightclsError
from lightcls.inference import (
    ImageInput,
    Predictor,
    collect_inputs,
    load_predictor,
    predict_files,
    results_from_probs,
)
from lightcls.models import MODELS, list_models

DEVICES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "auto": "auto"}


class Classifier:
    """An image classifier: train it on a split-folder data set, then predict; or load a trained one.

    Args:
        backbone: a model name from `Classifier.models()` (a conf/model/ config), e.g. "lenet", "resnet18".
    """

    def __init__(self, backbone: str = "lenet") -> None:
        if backbone not in MODELS:
            raise LightclsError(f"unknown model {backbone!r}; choose one of: {', '.join(list_models())}")
        self.backbone = backbone
        self.checkpoint: Path | None = None
        self.run_dir: Path | None = None
        self.metrics: dict[str, Any] | None = None
        self.result: dict[str, Any] | list[dict[str, Any]] | None = None
        self._predictor: Predictor | None = None

    @staticmethod
    def models() -> dict[str, str]:
        """The backbones there is a config for, with a line about each (like MMEdu's `cls.sota()`)."""
        return dict(sorted(MODELS.items()))

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "cpu") -> Classifier:
        """A trained classifier from a `.ckpt` (or an exported `.onnx`): load once, predict many times."""
        predictor = load_predictor(checkpoint, device=DEVICES.get(device, device))
        self = cls.__new__(cls)
        cls.__init__(self, predictor.meta["model"])
        self.checkpoint, self._predictor = Path(checkpoint), predictor
        return self

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
    ) -> dict[str, Any]:
        """Train with `python train.py`'s configs and task; return its metrics.json as a dict.

        `data` is a split-folder data set (None: the embedded digits). Its config is `data_config`, else
        conf/data/<folder name>.yaml when there is one (e.g. hand_gray, digits), else `folder` (RGB photos).
        `overrides` are any further Hydra overrides, as on the command line.
        """
        from lightcls.tasks.train import train

        if device not in DEVICES:
            raise LightclsError(f"device={device!r}: choose one of {', '.join(DEVICES)}")
        args = [f"model={self.backbone}", f"trainer={DEVICES[device]}", f"trainer.max_epochs={int(epochs)}"]
        if data is not None:
            args += [
                f"data={data_config or _data_config(Path(data))}",
                f"data.root={quote(Path(data).resolve())}",
            ]
        elif data_config:
            args.append(f"data={data_config}")
        if optimizer:
            args.append(f"optimizer={optimizer}")
        if lr is not None:
            args.append(f"optimizer.lr={lr}")
        if batch_size is not None:
            args.append(f"data.batch_size={int(batch_size)}")
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
        run_dir = unique_dir(Path(str(cfg.paths.outputs_root)) / str(cfg.task_name) / "runs")
        cfg.paths.output_dir = str(run_dir)
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
        (run_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(args), encoding="utf-8")
        with _log_to(run_dir / f"{cfg.task_name}.log"):
            self.metrics = train(cfg)
        self.run_dir = run_dir
        self.checkpoint = run_dir / (self.metrics["best_ckpt"] or self.metrics["last_ckpt"])
        self._predictor = load_predictor(self.checkpoint, device=DEVICES[device])
        return self.metrics

    def predict(
        self, image: ImageInput | Sequence[ImageInput], topk: int = 3, batch_size: int = 32
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Classify an image (path, numpy array, PIL image, tensor): one dict with `pred_label`,
        `pred_score`, `pred_class` and `topk`; a folder or a list gives a list of such dicts."""
        predictor = self._require_predictor()
        if isinstance(image, (str, Path)) and Path(image).is_dir():
            files, _ = collect_inputs(Path(image))
            self.result = predict_files(predictor, files, batch_size, topk)[0]
            return self.result
        many = isinstance(image, (list, tuple))
        items = list(image) if many else [image]
        results = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            probs = predictor.probabilities([predictor.to_tensor(item) for item in chunk])
            for item, result in zip(chunk, results_from_probs(probs, predictor.classes, topk), strict=True):
                results.append({"file": str(item), **result} if isinstance(item, (str, Path)) else result)
        self.result = results if many else results[0]
        return self.result

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

    def _require_predictor(self) -> Predictor:
        if self._predictor is None:
            raise LightclsError(
                "this Classifier is not trained: call train(...) or Classifier.load(ckpt) first"
            )
        return self._predictor

    def __repr__(self) -> str:
        return (
            f"Classifier({self.backbone!r}, checkpoint={str(self.checkpoint) if self.checkpoint else None!r})"
        )


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """The run's log lines also go to `path` (what Hydra's job logging gives a command-line run)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _data_config(root: Path) -> str:
    """conf/data/<name>.yaml when the data set's folder has a config's name, else the generic `folder`."""
    return root.name if (config_dir() / "data" / f"{root.name}.yaml").is_file() else "folder"
