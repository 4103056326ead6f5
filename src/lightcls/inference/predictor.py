"""Run a trained model on images: a `.ckpt` in PyTorch, or an exported `.onnx` in ONNX Runtime."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from lightcls.ckpt import read_checkpoint
from lightcls.data.decode import load_image, to_mode
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError
from lightcls.files import read_json
from lightcls.training import ClassificationModule

log = logging.getLogger(__name__)

#: What a single image may be given as.
ImageInput = str | Path | np.ndarray | Image.Image | torch.Tensor


class Predictor:
    """Class probabilities for images, with the preprocessing contract of the model it wraps."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.classes: list[str] = list(meta["classes"])
        self.preprocess = Preprocess.from_dict(meta["preprocess"])
        self.channels = self.preprocess.channels
        self.transform = self.preprocess.eval_transform()
        self.resize = self.preprocess.resize()
        #: several labels per image: sigmoid scores, and each label predicted at or above its threshold
        self.multilabel = meta.get("task") == "multilabel"
        thresholds = meta.get("thresholds")
        self.thresholds: list[float] | None = (
            [float(t) for t in thresholds] if self.multilabel and thresholds else None
        )
        if self.multilabel and self.thresholds is None:
            self.thresholds = [0.5] * len(self.classes)
        #: "sigmoid" where the model's output already is each label's probability (a multi-label export)
        self.activation = meta.get("activation")
        #: what the logits are divided by for calibrated probabilities (already so in `logits`)
        self.temperature = float(meta.get("temperature", 1.0))

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) for a normalized float batch (N, C, H, W) (a multi-label export: its
        probabilities, `activation` says so)."""
        raise NotImplementedError

    def to_tensor(self, image: ImageInput) -> torch.Tensor:
        """Any accepted image form as a (C, H, W) uint8 tensor in the model's colour mode.

        Arrays and tensors are (H, W, C) numpy or (C, H, W) torch, as the two libraries read images:
        uint8 in 0-255, or float in [0, 1] (scaled by 255; any other float range is refused).
        """
        if isinstance(image, (str, Path)):
            return load_image(image, self.channels, self.preprocess.resize_side)
        if isinstance(image, torch.Tensor):
            image = (image.permute(1, 2, 0) if image.ndim == 3 else image).cpu().numpy()
        if isinstance(image, np.ndarray):
            array = image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image
            if array.dtype != np.uint8:
                array = _float_to_uint8(array)
            image = Image.fromarray(array)
        if not isinstance(image, Image.Image):
            raise LightclsError(
                f"cannot classify a {type(image).__name__}: pass a path, numpy array or PIL image"
            )
        return F.pil_to_tensor(to_mode(image, self.preprocess.mode))

    @torch.inference_mode()
    def probabilities(self, images: Sequence[torch.Tensor], tta: str = "none") -> torch.Tensor:
        """Probabilities (N, classes) for uint8 image tensors (preprocessed here): softmax, or each label's
        sigmoid for a multi-label model; `tta`: averaged over that test-time augmentation's views."""
        return self.scores(torch.stack([self.resize(image) for image in images]), tta)

    @torch.inference_mode()
    def scores(self, resized: torch.Tensor, tta: str = "none") -> torch.Tensor:
        """`probabilities` of a batch already resized to the model's input (N, C, S, S) uint8."""
        batches = tta_views(resized, tta, self.preprocess)
        if len(batches) == 1:
            return self._scores(resized)
        return torch.stack([self._scores(batch) for batch in batches]).mean(dim=0)

    def _scores(self, resized: torch.Tensor) -> torch.Tensor:
        logits = self.logits(self.preprocess.normalize(resized)).float()
        if self.activation == "sigmoid":
            return logits
        return logits.sigmoid() if self.multilabel else logits.softmax(dim=-1)


#: test-time augmentations: each image's probabilities averaged over its views
TTA = ("none", "flip", "five_crop")


def tta_views(resized: torch.Tensor, tta: str, preprocess: Preprocess) -> list[torch.Tensor]:
    """The views of a resized uint8 batch that `tta` averages over: itself; with its mirror image (flip); or
    the four corners and centre of it enlarged by 8/7 (five_crop, as a 224 crop of a 256 side)."""
    if tta == "flip":
        return [resized, resized.flip(-1)]
    if tta == "five_crop":
        size = preprocess.image_size
        larger = F.resize(resized, [round(size * 8 / 7)] * 2, antialias=True)
        return list(F.five_crop(larger, [size, size]))
    if tta != "none":
        raise LightclsError(f"tta={tta}: choose one of {', '.join(TTA)}")
    return [resized]


class CheckpointPredictor(Predictor):
    """A lightcls `.ckpt`, rebuilt from the checkpoint alone and run in PyTorch."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        ckpt = read_checkpoint(path)
        super().__init__(contract(ckpt["hyper_parameters"], ckpt["state_dict"]))
        self.device = _device(device)
        self.module = ClassificationModule.from_checkpoint(path).to(self.device)

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """The logits at the checkpoint's calibrated temperature (as an export of it gives them)."""
        return (self.module(batch.to(self.device)) / self.temperature).cpu()


class OnnxPredictor(Predictor):
    """An exported `.onnx` model run in ONNX Runtime, with its contract from the `.json` beside it."""

    def __init__(self, path: str | Path, device: str = "cpu", provider: str | None = None) -> None:
        path = Path(path)
        sidecar = path.with_suffix(".json")
        if not path.is_file():
            raise LightclsError(f"ckpt_path={path}: no such file")
        if not sidecar.is_file():
            raise LightclsError(f"ckpt_path={path}: no {sidecar.name} beside it (lightcls-export writes one)")
        import onnxruntime as ort

        super().__init__(_contract(sidecar))
        providers = onnx_providers(device, provider, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(path), _session_options(), providers=providers)
        except Exception as err:  # noqa: BLE001 - any unreadable model reads the same to a user
            raise LightclsError(f"ckpt_path={path}: ONNX Runtime cannot load it") from err
        self.providers: list[str] = self.session.get_providers()
        self.input = self.session.get_inputs()[0]
        self.fixed_batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None
        pre, output = self.preprocess, self.session.get_outputs()[0]
        expected = [pre.channels, pre.image_size, pre.image_size, len(self.classes)]
        found = [*self.input.shape[1:4], output.shape[-1] if output.shape else None]
        if any(isinstance(f, int) and f != e for f, e in zip(found, expected, strict=True)):
            raise LightclsError(
                f"ckpt_path={path}: the model takes {'x'.join(map(str, found[:3]))} inputs and gives "
                f"{found[3]} scores, but {sidecar.name} says {'x'.join(map(str, expected[:3]))} and "
                f"{expected[3]} classes; export it again (model and {sidecar.name} together)"
            )

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
        super().__init__(
            read_json(path.with_suffix(".json"), "the exported model's contract: export it again")
        )
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "`torch.jit", FutureWarning)  # deprecated upstream
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as err:  # noqa: BLE001 - any unreadable model reads the same to a user
            raise LightclsError(f"ckpt_path={path}: not a TorchScript model") from err

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return self.module(batch)


def _contract(sidecar: Path) -> dict[str, Any]:
    """An exported model's contract (the `.json` beside it), with the classes and preprocessing it needs."""
    meta = read_json(sidecar, "the exported model's contract: export it again")
    if not isinstance(meta, dict) or not isinstance(meta.get("classes"), list) or "preprocess" not in meta:
        raise LightclsError(
            f"{sidecar}: not a lightcls export contract (no classes and preprocess); export again"
        )
    return meta


def load_predictor(path: str | Path, device: str = "cpu", provider: str | None = None) -> Predictor:
    """A predictor for a lightcls `.ckpt`, or an exported `.onnx` or TorchScript `.pt` (with its `.json`).

    `provider` (an ONNX Runtime execution provider: cuda, tensorrt, openvino, ... or its full name)
    applies to `.onnx` only.
    """
    path = Path(str(path)).expanduser()
    if path.suffix.lower() == ".onnx":
        return OnnxPredictor(path, device, provider)
    if path.suffix.lower() == ".pt" and path.with_suffix(".json").is_file():
        return TorchScriptPredictor(path)
    return CheckpointPredictor(path, device)


#: the class of an answer whose best score is below `min_score`
UNKNOWN = "unknown"


def results_from_probs(
    probs: torch.Tensor,
    classes: Sequence[str],
    topk: int = 3,
    thresholds: Sequence[float] | None = None,
    min_score: float | None = None,
) -> list[dict[str, Any]]:
    """Per image: `pred_label`, `pred_score`, `pred_class` (MMEdu/mmpretrain keys) and the top-k; for a
    multi-label model (`thresholds` given) also `labels`: every class at or above its threshold, best first
    (`pred_*` name the best of them, or the top score when none is). A best score below `min_score` is
    answered `unknown` (label -1; the top-k still lists the classes)."""
    if thresholds is not None:
        return [_labels_result(row, classes, thresholds, topk) for row in probs]
    k = max(1, min(int(topk), len(classes)))
    scores, labels = probs.topk(k, dim=-1)
    floor = -1.0 if min_score is None else float(min_score)
    return [
        {
            "pred_label": int(label_row[0]) if score_row[0] >= floor else -1,
            "pred_score": float(score_row[0]),
            "pred_class": classes[int(label_row[0])] if score_row[0] >= floor else UNKNOWN,
            "topk": [
                {"label": int(label), "class": classes[int(label)], "score": float(score)}
                for label, score in zip(label_row.tolist(), score_row.tolist(), strict=True)
            ],
        }
        for label_row, score_row in zip(labels, scores, strict=True)
    ]


def _labels_result(
    row: torch.Tensor, classes: Sequence[str], thresholds: Sequence[float], topk: int
) -> dict[str, Any]:
    """A multi-label image's result: its labels (scores at or above their thresholds), then the top-k."""
    scores = row.tolist()
    order = sorted(range(len(classes)), key=lambda i: -scores[i])
    chosen = [i for i in order if scores[i] >= thresholds[i]]
    best = chosen[0] if chosen else order[0]
    return {
        "labels": [{"label": i, "class": classes[i], "score": scores[i]} for i in chosen],
        "pred_label": best,
        "pred_score": scores[best],
        "pred_class": classes[best],
        "topk": [
            {"label": i, "class": classes[i], "score": scores[i]}
            for i in order[: max(1, min(topk, len(order)))]
        ],
    }


def contract(hparams: dict[str, Any], state_dict: dict[str, Any] | None = None) -> dict[str, Any]:
    """The input contract a deployed model needs: model name, class names and preprocessing; for a
    multi-label model its task and per-class thresholds (saved with its weights)."""
    meta = {
        "model": hparams["model"]["name"],
        "classes": list(hparams["classes"]),
        "preprocess": Preprocess.from_dict(hparams["preprocess"]).describe(),
        "output": "logits (softmax for probabilities)",
    }
    temperature = (state_dict or {}).get("temperature")
    if temperature is not None and float(temperature) != 1.0:
        meta.update(
            temperature=round(float(temperature), 6), output="logits / temperature (softmax: calibrated)"
        )
    if hparams.get("task") == "multilabel":
        saved = (state_dict or {}).get("thresholds")
        thresholds = saved.tolist() if saved is not None else [0.5] * len(meta["classes"])
        meta.update(
            task="multilabel",
            output="logits (sigmoid for each label's probability)",
            thresholds=[round(float(t), 6) for t in thresholds],
        )
    return meta


def _float_to_uint8(array: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] as uint8 (x * 255, rounded); integers in 0-255 as they are."""
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise LightclsError(f"an integer image must be in 0-255, got {array.min()}..{array.max()}")
        return array.astype(np.uint8)
    if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1 or np.isnan(array).any()):
        raise LightclsError(
            f"a float image must be in [0, 1], got {np.nanmin(array):.3g}..{np.nanmax(array):.3g}; "
            "pass uint8 for 0-255 values"
        )
    return (array * 255).round().astype(np.uint8)


def _device(name: str) -> torch.device:
    """`cpu`, `gpu`/`cuda`, or `auto` (a GPU when there is one) as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        log.warning("device=%s: torch sees no CUDA GPU here; running on the CPU", name)
        return torch.device("cpu")
    return torch.device("cuda" if name == "gpu" else name)


#: Short names for ONNX Runtime's execution providers (any full `...ExecutionProvider` name passes as is).
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}


def onnx_providers(device: str, provider: str | None, available: Sequence[str]) -> list[str]:
    """ONNX Runtime providers, best first, CPU last: `provider` if given, else CUDA for device=gpu|auto.

    What this onnxruntime build lacks is said in one line and left out (the model then runs on the CPU).
    """
    wanted = provider or ("cuda" if device in ("gpu", "cuda", "auto") else "cpu")
    name = PROVIDERS.get(str(wanted).lower(), str(wanted))
    chain = [name]
    if name == "TensorrtExecutionProvider":
        chain.append("CUDAExecutionProvider")
    chain = [p for p in chain if p != "CPUExecutionProvider"]
    missing = [p for p in chain if p not in available]
    if missing and not (device == "auto" and provider is None):
        hint = " (pip install onnxruntime-gpu)" if "CUDAExecutionProvider" in missing else ""
        what = f"provider={provider}" if provider else f"device={device}"
        log.warning(
            "%s: this onnxruntime has no %s%s; running on %s",
            what,
            " or ".join(missing),
            hint,
            ", ".join(p for p in chain if p in available) or "the CPU",
        )
    return [p for p in chain if p in available] + ["CPUExecutionProvider"]


def _session_options() -> Any:
    """ONNX Runtime options: no busy-waiting threads between runs (they would slow the image decoding)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
