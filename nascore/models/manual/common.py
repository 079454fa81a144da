"""Shared pieces of the manual CNNs: the width knob (:func:`scale_channels`, :func:`gn_groups`),
the :class:`ManualNet` container, small layer factories, and torchvision (imported once)."""
from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from nascore._torchvision_compat import import_torchvision
from nascore.models.base import BlockNet, Normalize

tv = import_torchvision()

__all__ = ["tv", "scale_channels", "gn_groups", "conv3x3", "classifier_head", "ManualNet"]


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded half-up to an integer, at least 1."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, int(math.floor(channels * width + 0.5)))


def gn_groups(channels: int, max_groups: int = 32) -> int:
    """GroupNorm groups for ``channels``: the largest divisor of ``channels`` that is
    ``<= min(max_groups, channels // 2)`` (at least 1).

    32 at every BiT-R50x1 full-width layer (all multiples of 64); at reduced width it keeps at
    least two channels per group, like GN(32, 64), the narrowest full-width BiT norm.
    """
    g = max(1, min(max_groups, channels // 2))
    while channels % g:
        g -= 1
    return g


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def classifier_head(features: int, num_classes: int, bias: bool = True) -> nn.Sequential:
    """Global average pool → flatten → ``Linear(features, num_classes)``."""
    return nn.Sequential(OrderedDict([
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("fc", nn.Linear(features, num_classes, bias=bias)),
    ]))


class ManualNet(BlockNet):
    """A hand-designed CNN as ``normalize → stem → blocks → head`` (see :class:`BlockNet`).

    ``arch`` names the architecture, ``width`` is the channel multiplier it was built with.
    Input ``(N, 3, H, W)`` in [0,1]; output logits ``(N, num_classes)``.
    """

    def __init__(self, arch: str, stem: nn.Module, blocks: list[nn.Module], head: nn.Module,
                 num_classes: int, width: float):
        super().__init__()
        self.arch = arch
        self.width = float(width)
        self.num_classes = int(num_classes)
        self.normalize = Normalize()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, width={self.width}, num_classes={self.num_classes}"
