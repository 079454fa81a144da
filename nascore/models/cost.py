"""Model cost, the package's one place for counting it. Two conventions, each for its own use:

* :func:`flops_per_image` — forward FLOPs of one image by :class:`torch.utils.flop_counter.FlopCounterMode`
  (convolutions and matmuls only, a multiply-add = 2 FLOPs): the model-size covariate of the AutoML
  chapters (chapter 1's table, the confound adjustment), comparable across every zoo model
  whatever its modules;
* :func:`leaf_ops` / :func:`operation_counts` — the DeepSloth authors' analytic count per leaf module
  (``profiler.py`` of the SDN and DeepSloth repositories; Hong et al., ICLR 2021), multiplies and adds
  counted separately and BN, ReLU and pooling included, summed per part of a network: the cost
  fractions of multi-exit networks (:mod:`nascore.multiexit.cost` aggregates them per exit).
  The table of counts and the grouped-convolution conventions are in :mod:`nascore.multiexit.cost`.

The two are not interchangeable (one counts element-wise work, the other does not), which is why the
DeepSloth efficacy and the AutoML covariate each keep the convention of their paper.
"""
from __future__ import annotations

import math
from typing import Callable, Hashable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .base import Normalize, eval_mode


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


GROUPED_CONV_COUNTS = ("deepsloth", "exact")
_FREE = (nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity, nn.Sequential)


def _kernel_area(k) -> int:
    return int(math.prod(k)) if isinstance(k, tuple) else int(k) ** 2


def leaf_ops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor, grouped_conv: str = "deepsloth") -> int:
    """Operations of one call of a leaf ``module`` on one batch (the table in :mod:`nascore.multiexit.cost`)."""
    if isinstance(module, nn.Conv2d):
        per_out = 2 * _kernel_area(module.kernel_size) * module.in_channels // module.groups - 1
        per_out += module.bias is not None
        extra = module.groups if grouped_conv == "deepsloth" else 1
        return out.numel() * per_out * extra
    if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, Normalize)):
        return 2 * inp.numel()
    if isinstance(module, nn.ReLU):
        return inp.numel()
    if isinstance(module, nn.MaxPool2d):
        return (_kernel_area(module.kernel_size) - 1) * out.numel()
    if isinstance(module, nn.AvgPool2d):
        return _kernel_area(module.kernel_size) * out.numel()
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return inp.numel()
    if isinstance(module, nn.Linear):
        return (2 * module.in_features - 1) * out.numel()
    if isinstance(module, _FREE):
        return 0
    raise ValueError(f"no operation count for leaf module {type(module).__name__}; counted types: Conv2d, "
                     "BatchNorm2d, GroupNorm, Normalize, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear "
                     "(free: Dropout, Flatten, Identity)")


@torch.no_grad()
def operation_counts(owner: dict[nn.Module, Hashable], forward: Callable[[], object],
                     grouped_conv: str = "deepsloth") -> dict[Hashable, int]:
    """Operations per part: run ``forward()`` (one image through the model) with a hook on every leaf
    module of ``owner`` (leaf module → the key of the part it belongs to) and sum :func:`leaf_ops` per
    key. A leaf without an operation count raises ``ValueError`` (after the pass, hooks removed)."""
    if grouped_conv not in GROUPED_CONV_COUNTS:
        raise ValueError(f"grouped_conv must be one of {GROUPED_CONV_COUNTS}, got {grouped_conv!r}")
    totals: dict[Hashable, int] = {}
    errors: list[Exception] = []

    def hook(module, inputs, output):
        try:
            ops = leaf_ops(module, inputs[0], output, grouped_conv)
        except ValueError as err:
            errors.append(err)
            return
        key = owner[module]
        totals[key] = totals.get(key, 0) + ops

    handles = [m.register_forward_hook(hook) for m in owner]
    try:
        forward()
    finally:
        for h in handles:
            h.remove()
    if errors:
        raise errors[0]
    return totals
