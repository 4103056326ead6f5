"""Knowledge distillation: a frozen teacher's softened outputs as the student's extra target (Hinton et al.;
PaddleClas's SSLD, DeiT): `alpha * KL(student/T || teacher/T) * T^2 + (1 - alpha) * loss(labels)`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightcls.ckpt import model_file
from lightcls.data.preprocess import Preprocess
from lightcls.errors import LightclsError

log = logging.getLogger(__name__)


def check_distill(config: Mapping[str, Any] | None) -> tuple[str, float, float] | None:
    """The teacher's checkpoint, temperature and alpha of `distill`, or None when there is no teacher;
    a bad value is one line naming its key."""
    if not config or not config.get("teacher"):
        return None
    temperature, alpha = config.get("temperature", 4.0), config.get("alpha", 0.5)
    for key, value, ok in (
        ("temperature", temperature, lambda v: v > 0),
        ("alpha", alpha, lambda v: 0 <= v <= 1),
    ):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and ok(value)):
            said = "a number > 0" if key == "temperature" else "a number from 0 to 1"
            raise LightclsError(f"distill.{key}={value}: give {said}")
    path = model_file(Path(str(config["teacher"])).expanduser())
    if not path.is_file():
        raise LightclsError(f"distill.teacher={config['teacher']}: no such checkpoint (or run or sweep dir)")
    return str(path), float(temperature), float(alpha)


class Teacher(nn.Module):
    """A trained classifier, frozen and in eval mode, fed the student's batch through its own preprocessing
    contract (its input size, channels, mean and std)."""

    def __init__(self, net: nn.Module, own: Preprocess, student: Preprocess) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.own, self.student = own, student

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)  # always in eval mode

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for the student's normalized (perhaps mixed) batch."""
        device, dtype = x.device, x.dtype
        s_mean = torch.tensor(self.student.mean, device=device, dtype=dtype).view(1, -1, 1, 1)
        s_std = torch.tensor(self.student.std, device=device, dtype=dtype).view(1, -1, 1, 1)
        images = x * s_std + s_mean  # back to [0, 1]
        if images.shape[1] == 1 and self.own.channels == 3:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] == 3 and self.own.channels == 1:
            luma = torch.tensor([0.299, 0.587, 0.114], device=device, dtype=dtype).view(1, 3, 1, 1)
            images = (images * luma).sum(dim=1, keepdim=True)
        size = self.own.image_size
        if images.shape[-1] != size or images.shape[-2] != size:
            images = F.interpolate(
                images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        t_mean = torch.tensor(self.own.mean, device=device, dtype=dtype).view(1, -1, 1, 1)
        t_std = torch.tensor(self.own.std, device=device, dtype=dtype).view(1, -1, 1, 1)
        return self.net((images - t_mean) / t_std)


def distill_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, multilabel: bool = False
) -> torch.Tensor:
    """The soft-target term, times T^2 so its gradients keep their size across temperatures: KL divergence of
    the softened softmaxes, or for a multi-label model BCE against the teacher's softened sigmoids."""
    t = temperature
    if multilabel:
        return F.binary_cross_entropy_with_logits(student / t, (teacher / t).sigmoid()) * t * t
    return (
        F.kl_div(F.log_softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1), reduction="batchmean")
        * t
        * t
    )
