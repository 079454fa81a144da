"""ResNet-18, ResNeXt-50 (32x4d) and Wide-ResNet-50-2, CIFAR ``_comp`` variants built from
torchvision's ``ResNet`` constructor (see :mod:`nascore.models.manual`)."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

from torch import nn

from .common import ManualNet, conv3x3, scale_channels, tv

_tvr = tv.models.resnet

__all__ = ["ResNetComp", "resnet18", "resnext50_32x4d", "wide_resnet50_2"]


class ResNetComp(ManualNet):
    """ResNet-18 / ResNeXt-50 / Wide-ResNet-50-2 as a :class:`~nascore.models.manual.common.ManualNet`. Its own class (no new
    behaviour) so that a cached model's code fingerprint (:mod:`nascore.fingerprint`, the modules
    defining the model's classes) covers this module's builder."""


class _WidthResNet(_tvr.ResNet):
    """torchvision's ``ResNet`` constructor with the stage widths passed through ``plane_fn``.

    Only ``_make_layer`` is wrapped (its ``planes`` argument is mapped, and the stem width that
    feeds layer1 is set to ``stem_width``), so the blocks, the downsample shortcuts and
    torchvision's weight init are torchvision's own; with the identity ``plane_fn`` and
    ``stem_width=64`` this is exactly ``torchvision.models.ResNet`` (the constructor behind
    ``resnet18``/``resnext50_32x4d``/``wide_resnet50_2``).
    """

    def __init__(self, *args, plane_fn: Callable[[int], int], stem_width: int, **kwargs):
        self._plane_fn = plane_fn
        self._stem_width = stem_width
        self._first_layer = True
        super().__init__(*args, **kwargs)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if self._first_layer:  # layer1 reads the (replaced) stem's output
            self.inplanes = self._stem_width
            self._first_layer = False
        return super()._make_layer(block, self._plane_fn(planes), blocks, stride, dilate)


def _resnet_comp(arch: str, block: type, layers: list[int], num_classes: int, width: float,
                 n_stages: int = 4, fc_bias: bool = True, groups: int = 1,
                 width_per_group: int = 64, plane_fn: Callable[[int], int] | None = None,
                 ) -> ManualNet:
    """autovul ``*_comp`` ResNet: 3x3 stride-1 conv1 + BN + ReLU (no max-pool), the first
    ``n_stages`` torchvision stages, global average pool, Linear."""
    if plane_fn is None:
        def plane_fn(p: int) -> int:
            return scale_channels(p, width)
    stem_ch = scale_channels(64, width)
    net = _WidthResNet(block, layers, num_classes=num_classes, groups=groups,
                       width_per_group=width_per_group, plane_fn=plane_fn, stem_width=stem_ch)
    stem = nn.Sequential(OrderedDict([
        ("conv1", conv3x3(3, stem_ch)),  # autovul: conv3x3(conv1.in, conv1.out), default init
        ("bn1", nn.BatchNorm2d(stem_ch)),
        ("relu", nn.ReLU(inplace=True)),
    ]))
    stages = [net.layer1, net.layer2, net.layer3, net.layer4][:n_stages]
    blocks = [b for stage in stages for b in stage]
    out_ch = stages[-1][-1].bn3.num_features if block is _tvr.Bottleneck \
        else stages[-1][-1].bn2.num_features
    # torchvision's fc is a default-initialised Linear(512 * expansion, C); the replacement is the
    # same layer at the scaled width (ResNeXt comp: Linear(fc.in_features // 2, C, bias=False)).
    fc = nn.Linear(out_ch, num_classes, bias=fc_bias)
    head = nn.Sequential(OrderedDict([("pool", net.avgpool), ("flatten", nn.Flatten(1)), ("fc", fc)]))
    return ResNetComp(arch, stem, blocks, head, num_classes, width)


def resnet18(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR ResNet-18 (autovul ``resnet18_comp``; Pang et al., USENIX Security 2022).

    torchvision ``resnet18`` with conv1 = 3x3 stride-1 (no bias) + BN + ReLU, no max-pool, layers
    1-4 (8 BasicBlocks = the blocks), global avg-pool, ``Linear(512*w, num_classes)``.
    ``(N,3,32,32)`` in [0,1] → logits ``(N, num_classes)``; last block output ``(N,512w,4,4)``.
    """
    return _resnet_comp("resnet18", _tvr.BasicBlock, [2, 2, 2, 2], num_classes, width)


def _resnext_planes(width: float) -> Callable[[int], int]:
    def plane_fn(planes: int) -> int:
        # multiple of 16 (>= 16): torchvision's grouped width int(planes*4/64)*32 = 2*planes
        return max(16, 16 * int(math.floor(planes * width / 16 + 0.5)))
    return plane_fn


def resnext50_32x4d(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR ResNeXt-50 (32x4d) (autovul ``resnext50_32x4d_comp``; Pang et al., USENIX Security 2022).

    torchvision ``resnext50_32x4d`` with a 3x3 stride-1 conv1 + BN + ReLU, no max-pool and **only
    layers 1-3** (layer4 dropped: 13 Bottlenecks), global avg-pool and ``fc = Linear(1024*w,
    num_classes, bias=False)`` as in the artifact (``in_features // 2``, ``bias=fc.bias is None``).
    ``(N,3,32,32)`` → ``(N, num_classes)``; last block output ``(N,1024w,8,8)``.
    """
    return _resnet_comp("resnext50_32x4d", _tvr.Bottleneck, [3, 4, 6, 3], num_classes, width,
                        n_stages=3, fc_bias=False, groups=32, width_per_group=4,
                        plane_fn=_resnext_planes(width))


def wide_resnet50_2(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR Wide-ResNet-50-2 (autovul ``wide_resnet50_2_comp``; Pang et al., USENIX Security 2022).

    torchvision ``wide_resnet50_2`` (bottleneck width x2) with a 3x3 stride-1 conv1 + BN + ReLU,
    no max-pool, layers 1-4 (16 Bottlenecks), global avg-pool, ``Linear(2048*w, num_classes)``.
    ``(N,3,32,32)`` → ``(N, num_classes)``; last block output ``(N,2048w,4,4)``.
    """
    return _resnet_comp("wide_resnet50_2", _tvr.Bottleneck, [3, 4, 6, 3], num_classes, width,
                        width_per_group=128)
