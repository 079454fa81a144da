"""VGG-13-BN, CIFAR ``_comp`` variant of torchvision's ``vgg13_bn`` features (see :mod:`nascore.models.manual`)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .common import ManualNet, scale_channels, tv

__all__ = ["VGGComp", "vgg13_bn"]


class VGGComp(ManualNet):
    """VGG-13-BN as a :class:`~nascore.models.manual.common.ManualNet`. Its own class (no new
    behaviour) so that a cached model's code fingerprint (:mod:`nascore.fingerprint`, the modules
    defining the model's classes) covers this module's builder."""


def _tv_vgg_init(module: nn.Module) -> None:
    """torchvision ``VGG(init_weights=True)`` init for conv/BN layers."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def vgg13_bn(num_classes: int = 10, width: float = 1.0, dropout: float = 0.5) -> ManualNet:
    """CIFAR VGG-13-BN (autovul ``vgg13_bn_comp``; Pang et al., USENIX Security 2022).

    torchvision ``vgg13_bn`` features (cfg "B", conv widths x w, torchvision's VGG init); each
    conv-BN-ReLU(+max-pool) is a block (10). The stem is the identity (the first block's 3x3
    stride-1 conv reads the normalised image). Head: global avg-pool, then the artifact's MLP
    ``Linear(512w,512w)-ReLU-Dropout(p)-Linear(512w,512w)-ReLU-Dropout(p)-Linear(512w,C)``, p =
    ``dropout`` (0.5 in the artifact; the CPU profiles turn it off: at width 1/8 and one epoch the
    64-unit head under-fits with it — 29.6 % vs 53.9 % test accuracy, README "VGG head dropout").
    ``(N,3,32,32)`` → ``(N, num_classes)``; last block output ``(N,512w,1,1)``.
    """
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    cfg = [v if v == "M" else scale_channels(v, width) for v in tv.models.vgg.cfgs["B"]]
    features = tv.models.vgg.make_layers(cfg, batch_norm=True)
    _tv_vgg_init(features)
    blocks: list[nn.Sequential] = []
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            blocks.append(nn.Sequential())
        blocks[-1].append(layer)
    conv_dim = scale_channels(512, width)
    fc_dim = scale_channels(512, width)
    head = nn.Sequential(OrderedDict([
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("fc1", nn.Linear(conv_dim, fc_dim)),
        ("relu1", nn.ReLU(inplace=True)),
        ("dropout1", nn.Dropout(dropout)),
        ("fc2", nn.Linear(fc_dim, fc_dim)),
        ("relu2", nn.ReLU(inplace=True)),
        ("dropout2", nn.Dropout(dropout)),
        ("fc3", nn.Linear(fc_dim, num_classes)),
    ]))
    return VGGComp("vgg13_bn", nn.Identity(), blocks, head, num_classes, width)
