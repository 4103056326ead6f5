"""A model's size: parameters and FLOPs of one forward pass."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count(net: nn.Module, channels: int, image_size: int, device: str = "cpu") -> dict[str, int]:
    """Parameters (all and trainable) and FLOPs of one forward pass at `image_size` (MACs = FLOPs / 2), on
    `device` (meta: a model built without memory)."""
    net = net.eval()
    # with gradients on: attention's fused inference path (no_grad) hides its matmuls from the counter
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, channels, image_size, image_size, device=device))
    flops = int(counter.get_total_flops())
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "flops": flops,
        "macs": flops // 2,
        "flops_input": [1, channels, image_size, image_size],
    }
