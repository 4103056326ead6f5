"""Run a trained model on images: a `.ckpt` in PyTorch, or an exported `.onnx` in ONNX Runtime."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from lightcls.checkpoints import contract, load_module, read_checkpoint
from lightcls.data.images import _to_mode, load_image
from lightcls.data.transforms import eval_transform
from lightcls.errors import LightclsError

#: What a single image may be given as.
ImageInput = str | Path | np.ndarray | Image.Image | torch.Tensor


class Predictor:
    """Class probabilities for images, with the preprocessing contract of the model it wraps."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.classes: list[str] = list(meta["classes"])
        self.preprocess: dict[str, Any] = dict(meta["preprocess"])
        self.channels = int(self.preprocess["channels"])
        self.transform = eval_transform(self.preprocess)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) for a normalized float batch (N, C, H, W)."""
        raise NotImplementedError

    def to_tensor(self, image: ImageInput) -> torch.Tensor:
        """Any accepted image form as a (C, H, W) uint8 tensor in the model's colour mode."""
        if isinstance(image, (str, Path)):
            return load_image(image, self.channels)
        if isinstance(image, torch.Tensor):  # (C, H, W) or (H, W), as torchvision reads images
            image = (image.permute(1, 2, 0) if image.ndim == 3 else image).cpu().numpy()
        if isinstance(image, np.ndarray):
            array = image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image
            if array.dtype != np.uint8:
                scale = 255.0 if array.max() <= 1.0 else 1.0
                array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
            image = Image.fromarray(array)
        if not isinstance(image, Image.Image):
            raise LightclsError(
                f"cannot classify a {type(image).__name__}: pass a path, numpy array or PIL image"
            )
        img = _to_mode(image, "L" if self.channels == 1 else "RGB")
        return F.pil_to_tensor(img)

    @torch.inference_mode()
    def probabilities(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Softmax probabilities (N, classes) for uint8 image tensors (preprocessed here)."""
        batch = torch.stack([self.transform(image) for image in images])
        return self.logits(batch).float().softmax(dim=-1)


class CheckpointPredictor(Predictor):
    """A lightcls `.ckpt`, rebuilt from the checkpoint alone and run in PyTorch."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        hparams = read_checkpoint(path)["hyper_parameters"]
        super().__init__(contract(hparams))
        self.device = _device(device)
        self.module = load_module(path).to(self.device)

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return self.module(batch.to(self.device)).cpu()


class OnnxPredictor(Predictor):
    """An exported `.onnx` model run in ONNX Runtime, with its contract from the `.json` beside it."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        sidecar = path.with_suffix(".json")
        if not path.is_file():
            raise LightclsError(f"ckpt_path={path}: no such file")
        if not sidecar.is_file():
            raise LightclsError(f"ckpt_path={path}: no {sidecar.name} beside it (lightcls-export writes one)")
        import onnxruntime as ort

        super().__init__(json.loads(sidecar.read_text(encoding="utf-8")))
        try:
            self.session = ort.InferenceSession(
                str(path), _session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # noqa: BLE001 - any unreadable model reads the same to a user
            raise LightclsError(f"ckpt_path={path}: ONNX Runtime cannot load it") from err
        self.input = self.session.get_inputs()[0]
        self.fixed_batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.numpy().astype(np.float32)
        step = self.fixed_batch or len(array)
        outputs = [
            self.session.run(None, {self.input.name: array[i : i + step]})[0]
            for i in range(0, len(array), step)
        ]
        return torch.from_numpy(np.concatenate(outputs))


class TorchScriptPredictor(Predictor):
    """An exported TorchScript `.pt` model (torch.jit.load), with its contract from the `.json` beside it."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        super().__init__(json.loads(path.with_suffix(".json").read_text(encoding="utf-8")))
        try:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as err:  # noqa: BLE001 - any unreadable model reads the same to a user
            raise LightclsError(f"ckpt_path={path}: not a TorchScript model") from err

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return self.module(batch)


def load_predictor(path: str | Path, device: str = "cpu") -> Predictor:
    """A predictor for a lightcls `.ckpt`, or an exported `.onnx` or TorchScript `.pt` (with its `.json`)."""
    path = Path(str(path)).expanduser()
    if path.suffix.lower() == ".onnx":
        return OnnxPredictor(path)
    if path.suffix.lower() == ".pt" and path.with_suffix(".json").is_file():
        return TorchScriptPredictor(path)
    return CheckpointPredictor(path, device)


def results_from_probs(probs: torch.Tensor, classes: Sequence[str], topk: int = 3) -> list[dict[str, Any]]:
    """Per image: `pred_label`, `pred_score`, `pred_class` (MMEdu/mmpretrain keys) and the top-k."""
    k = max(1, min(int(topk), len(classes)))
    scores, labels = probs.topk(k, dim=-1)
    return [
        {
            "pred_label": int(label_row[0]),
            "pred_score": float(score_row[0]),
            "pred_class": classes[int(label_row[0])],
            "topk": [
                {"label": int(label), "class": classes[int(label)], "score": float(score)}
                for label, score in zip(label_row.tolist(), score_row.tolist(), strict=True)
            ],
        }
        for label_row, score_row in zip(labels, scores, strict=True)
    ]


def _device(name: str) -> torch.device:
    """`cpu`, `gpu`/`cuda`, or `auto` (a GPU when there is one) as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device("cuda" if name == "gpu" else name)


def _session_options() -> Any:
    """ONNX Runtime options: no busy-waiting threads between runs (they would slow the image decoding)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
