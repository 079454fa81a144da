"""BiT-M-R50x1 architecture (ResNet-v2, GroupNorm, weight standardisation), CIFAR ``_comp``
variant trained from scratch (see :mod:`nascore.models.manual`)."""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..._cpu_workarounds import is_strided_pointwise, strided_pointwise_conv2d
from .common import ManualNet, gn_groups, scale_channels

__all__ = ["BiTComp", "StdConv2d", "PreActBottleneck", "bit_r50x1"]


class BiTComp(ManualNet):
    """BiT-M-R50x1 as a :class:`~nascore.models.manual.common.ManualNet`. Its own class (no new
    behaviour) so that a cached model's code fingerprint (:mod:`nascore.fingerprint`, the modules
    defining the model's classes) covers this module's builder."""


class StdConv2d(nn.Conv2d):
    """Conv2d with weight standardisation (Qiao et al. 2019; used by BiT, Kolesnikov et al. 2020).

    Each output filter is standardised to zero mean and unit (biased) variance over
    ``(in_channels, kH, kW)`` before the convolution: ``w' = (w - mean) / sqrt(var + eps)``.
    """

    eps = 1e-10  # as in google-research/big_transfer

    def standardized_weight(self) -> torch.Tensor:
        var, mean = torch.var_mean(self.weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (self.weight - mean) / torch.sqrt(var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_strided_pointwise(self):  # the projection shortcut: see nascore._cpu_workarounds
            return strided_pointwise_conv2d(x, self.standardized_weight(), self.bias, self.stride, self.groups)
        return F.conv2d(x, self.standardized_weight(), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


def _std_conv(cin: int, cout: int, k: int, stride: int = 1) -> StdConv2d:
    return StdConv2d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, bias=False)


class PreActBottleneck(nn.Module):
    """ResNet-v2 pre-activation bottleneck with GroupNorm + StdConv (BiT; stride on the 3x3).

    ``GN-ReLU → (projection shortcut if shape changes) → 1x1 → GN-ReLU-3x3(stride) → GN-ReLU-1x1``,
    added to the shortcut. No activation after the addition.
    """

    def __init__(self, cin: int, cout: int, cmid: int, stride: int = 1):
        super().__init__()
        self.gn1 = nn.GroupNorm(gn_groups(cin), cin)
        self.conv1 = _std_conv(cin, cmid, 1)
        self.gn2 = nn.GroupNorm(gn_groups(cmid), cmid)
        self.conv2 = _std_conv(cmid, cmid, 3, stride)
        self.gn3 = nn.GroupNorm(gn_groups(cmid), cmid)
        self.conv3 = _std_conv(cmid, cout, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _std_conv(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.gn1(x))
        shortcut = self.downsample(out) if self.downsample is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.gn2(out)))
        out = self.conv3(self.relu(self.gn3(out)))
        return out + shortcut


def bit_r50x1(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR BiT-M-R50x1 architecture, trained from scratch (autovul ``bit-m-r50x1_comp``;
    Pang et al., USENIX Security 2022; Kolesnikov et al., ECCV 2020).

    ResNet-v2 with pre-activation bottlenecks ``[3,4,6,3]`` (16 blocks), GroupNorm (32 groups at
    w=1, see :func:`gn_groups`) and weight-standardised convs (:class:`StdConv2d`). Root: one 3x3
    stride-1 StdConv ``3 → 64w`` (no norm, no pool). Head: GN, ReLU, global avg-pool,
    ``Linear(2048w, num_classes)``. ``(N,3,32,32)`` → ``(N, num_classes)``; last block output
    ``(N,2048w,4,4)``.
    """
    s = lambda ch: scale_channels(ch, width)  # noqa: E731
    stem = _std_conv(3, s(64), 3)
    blocks: list[nn.Module] = []
    cin = s(64)
    for n_units, mid, stride in ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)):
        for i in range(n_units):
            blocks.append(PreActBottleneck(cin, s(4 * mid), s(mid), stride if i == 0 else 1))
            cin = s(4 * mid)
    head = nn.Sequential(OrderedDict([
        ("gn", nn.GroupNorm(gn_groups(cin), cin)),
        ("relu", nn.ReLU(inplace=True)),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("fc", nn.Linear(cin, num_classes)),
    ]))
    return BiTComp("bit_r50x1", stem, blocks, head, num_classes, width)
