"""DenseNet-121, CIFAR ``_comp`` variant of torchvision's ``DenseNet`` (see :mod:`nascore.models.manual`)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .common import ManualNet, scale_channels, tv

__all__ = ["DenseNetComp", "densenet121"]


class DenseNetComp(ManualNet):
    """DenseNet-121 as a :class:`~nascore.models.manual.common.ManualNet`. Its own class (no new
    behaviour) so that a cached model's code fingerprint (:mod:`nascore.fingerprint`, the modules
    defining the model's classes) covers this module's builder."""


def densenet121(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR DenseNet-121 (autovul ``densenet121_comp``; Pang et al., USENIX Security 2022).

    torchvision ``DenseNet(growth_rate=32w, block_config=(6,12,24,16), num_init_features=64w)``;
    the stem conv0/norm0/relu0/pool0 is replaced by a single 3x3 stride-1 conv (no BN/ReLU after
    it); blocks = denseblock1, transition1, …, denseblock4 (7); head = norm5, ReLU, global
    avg-pool, ``Linear(1024 at w=1, num_classes)``.
    ``(N,3,32,32)`` → ``(N, num_classes)``; last block output ``(N,1024,4,4)`` at w=1.
    """
    dn = tv.models.densenet.DenseNet(growth_rate=scale_channels(32, width),
                                     block_config=(6, 12, 24, 16),
                                     num_init_features=scale_channels(64, width),
                                     bn_size=4, num_classes=num_classes)
    f = dn.features
    conv0 = f.conv0
    stem = nn.Conv2d(conv0.in_channels, conv0.out_channels, kernel_size=3, padding=1, bias=False)
    names = ["denseblock1", "transition1", "denseblock2", "transition2",
             "denseblock3", "transition3", "denseblock4"]
    blocks = [getattr(f, n) for n in names]
    head = nn.Sequential(OrderedDict([
        ("norm5", f.norm5),
        ("relu", nn.ReLU(inplace=True)),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("fc", dn.classifier),
    ]))
    return DenseNetComp("densenet121", stem, blocks, head, num_classes, width)
