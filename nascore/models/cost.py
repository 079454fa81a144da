"""Model cost: parameters and FLOPs per image (``torch.utils.flop_counter``)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .base import eval_mode


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def flops_per_image(model: nn.Module, image_size: int = 32) -> int:
    """Forward FLOPs for one ``(1, 3, image_size, image_size)`` image in eval mode.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions,
    one multiply-add = 2 FLOPs); element-wise ops, pooling and BN are not counted.
    """
    device = next(model.parameters()).device
    with eval_mode(model), FlopCounterMode(display=False) as counter:   # every module's mode restored
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    return int(counter.get_total_flops())
