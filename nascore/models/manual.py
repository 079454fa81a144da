"""The seven hand-designed ("manual") CNNs of the AutoML-security comparison, adapted to CIFAR.

Protocol: Pang et al., "On the Security Risks of AutoML", USENIX Security 2022
(artifact: https://github.com/ain-soph/autovul, models ``*_comp``). The ``_comp`` variants adapt
the ImageNet architectures to 32x32 inputs by replacing the stem with a 3x3 stride-1 convolution
and dropping the stem max-pool, so the first stage runs at full 32x32 resolution.

Every builder returns a :class:`~nascore.models.base.BlockNet`:

* input: **[0,1] images** ``(N, 3, 32, 32)``; the CIFAR-10 mean/std normalisation is the model's
  first operation (``model.normalize``);
* output: **logits** ``(N, num_classes)`` only;
* ``model.blocks`` are the natural units an internal classifier can follow (each ResNet
  BasicBlock/Bottleneck, each DenseNet dense block and transition, each VGG conv-BN-ReLU(+pool)
  unit, each DLA level, each BiT pre-activation bottleneck); ``forward_with_taps`` returns one
  tensor per block.

Full-width architectures (10 classes, 32x32 input; block output shapes are ``(C, H, W)``)::

    name              blocks  block outputs                                         params
    resnet18            8     (64,32,32)x2 (128,16,16)x2 (256,8,8)x2 (512,4,4)x2     11,173,962
    resnext50_32x4d    13     (256,32,32)x3 (512,16,16)x4 (1024,8,8)x6                8,437,568
    wide_resnet50_2    16     (256,32,32)x3 (512,16,16)x4 (1024,8,8)x6 (2048,4,4)x3  66,847,050
    densenet121         7     dense1 (256,32,32)  trans1 (128,16,16)                  6,956,298
                              dense2 (512,16,16)  trans2 (256,8,8)
                              dense3 (1024,8,8)   trans3 (512,4,4)  dense4 (1024,4,4)
    dla34               6     (16,32,32) (32,32,32) (64,32,32) (128,16,16)           15,232,314
                              (256,8,8) (512,4,4)
    vgg13_bn           10     (64,32,32) (64,16,16) (128,16,16) (128,8,8) (256,8,8)   9,941,322
                              (256,4,4) (512,4,4) (512,2,2) (512,2,2) (512,1,1)
    bit_r50x1          16     (256,32,32)x3 (512,16,16)x4 (1024,8,8)x6 (2048,4,4)x3  23,513,162

(``tests/test_manual_models.py`` pins the parameter counts and shapes and says where each number
comes from.)

Width knob
----------
Every builder takes ``width`` (default 1.0) that multiplies every channel count, rounded to the
nearest integer >= 1 (:func:`scale_channels`). ``width=1.0`` is exactly the architecture above.
Per-family details at ``width != 1``:

* ResNet-18 / Wide-ResNet-50-2: stage widths ``64,128,256,512`` (and the stem) scaled.
* ResNeXt-50 (32x4d): ``groups=32`` is kept; the stage ``planes`` (64,128,256 at w=1) are scaled
  and rounded to a multiple of 16 (at least 16), so torchvision's grouped-conv width
  ``planes/16*32`` is always a whole multiple of the 32 groups (>= one channel per group).
* DenseNet-121: ``growth_rate=32*w`` and ``num_init_features=64*w`` (``bn_size=4`` kept).
* DLA-34: channels ``[16,32,64,128,256,512]*w``.
* VGG-13-BN: every conv width of torchvision cfg "B" and the 512-wide MLP hidden layers scaled.
* BiT-R50x1: every width (root 64, bottleneck mid/out widths) scaled. GroupNorm keeps 32 groups
  where possible: ``groups = largest divisor of C that is <= min(32, C // 2)``
  (:func:`gn_groups`), i.e. 32 groups but never fewer than 2 channels per group — the fewest
  BiT-R50x1 has at full width (GN(32, 64)). At full width every GN therefore has 32 groups.

Initialisation follows the artifact: torchvision-built pieces keep torchvision's init
(ResNet/DenseNet/VGG constructors), the replaced CIFAR stems and the new heads/MLPs and the
hand-written DLA/BiT use PyTorch's default init, as in autovul.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nascore._torchvision_compat import import_torchvision
from nascore.models.base import BlockNet, Normalize

tv = import_torchvision()
_tvr = tv.models.resnet

__all__ = [
    "MANUAL_BUILDERS",
    "ManualNet",
    "StdConv2d",
    "PreActBottleneck",
    "gn_groups",
    "scale_channels",
    "resnet18",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "densenet121",
    "dla34",
    "vgg13_bn",
    "bit_r50x1",
]


# --------------------------------------------------------------------------- helpers


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


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _classifier_head(features: int, num_classes: int, bias: bool = True) -> nn.Sequential:
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


# --------------------------------------------------------------------------- ResNet family


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
        ("conv1", _conv3x3(3, stem_ch)),  # autovul: conv3x3(conv1.in, conv1.out), default init
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
    return ManualNet(arch, stem, blocks, head, num_classes, width)


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


# --------------------------------------------------------------------------- DenseNet


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
    return ManualNet("densenet121", stem, blocks, head, num_classes, width)


# --------------------------------------------------------------------------- DLA-34


class _DLABasicBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a shortcut (given or the input), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, shortcut: torch.Tensor | None = None) -> torch.Tensor:
        if shortcut is None:
            shortcut = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class _DLARoot(nn.Module):
    """Aggregation node: concat children → 1x1 conv → BN → ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.relu(self.bn(self.conv(torch.cat(xs, dim=1))))


class _DLATree(nn.Module):
    """Hierarchical deep aggregation tree of the official DLA (Yu et al., CVPR 2018).

    ``levels == 1``: two blocks aggregated by a root; ``levels > 1``: two sub-trees, the second
    one aggregating (through its root) the first's output and, if ``level_root``, the
    downsampled input. As in timm/trojanzoo, the 1x1 projection of the shortcut lives only in
    ``levels == 1`` trees whose channel count changes (the official checkpoints' unused
    projections of ``levels > 1`` trees are dropped).
    """

    def __init__(self, levels: int, cin: int, cout: int, stride: int = 1,
                 level_root: bool = False, root_dim: int = 0):
        super().__init__()
        if root_dim == 0:
            root_dim = 2 * cout
        if level_root:
            root_dim += cin
        self.levels = levels
        self.level_root = level_root
        self.downsample = nn.MaxPool2d(stride, stride=stride) if stride > 1 else None
        self.project = None
        if levels == 1:
            self.tree1 = _DLABasicBlock(cin, cout, stride)
            self.tree2 = _DLABasicBlock(cout, cout, 1)
            self.root = _DLARoot(root_dim, cout)
            if cin != cout:
                self.project = nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, bias=False),
                                             nn.BatchNorm2d(cout))
        else:
            self.tree1 = _DLATree(levels - 1, cin, cout, stride, root_dim=0)
            self.tree2 = _DLATree(levels - 1, cout, cout, 1, root_dim=root_dim + cout)
            self.root = None

    def forward(self, x: torch.Tensor, shortcut: torch.Tensor | None = None,
                children: list[torch.Tensor] | None = None) -> torch.Tensor:
        children = [] if children is None else children
        bottom = self.downsample(x) if self.downsample is not None else x
        shortcut = self.project(bottom) if self.project is not None else bottom
        if self.level_root:
            children.append(bottom)
        x1 = self.tree1(x, shortcut)
        if self.levels == 1:
            x2 = self.tree2(x1)
            return self.root([x2, x1, *children])
        children.append(x1)
        return self.tree2(x1, None, children)


class _DLALevel(nn.Module):
    """A DLA level as a one-input module (wraps a tree so ``BlockNet.features`` can chain it)."""

    def __init__(self, tree: _DLATree):
        super().__init__()
        self.tree = tree

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tree(x)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", _conv3x3(cin, cout, stride)),
        ("bn", nn.BatchNorm2d(cout)),
        ("relu", nn.ReLU(inplace=True)),
    ]))


def dla34(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR DLA-34 (autovul ``dla34_comp``; Pang et al., USENIX Security 2022; Yu et al. 2018).

    Official DLA-34 tree structure: levels ``[1,1,1,2,2,1]``, channels
    ``[16,32,64,128,256,512]*w``, BasicBlocks, no residual roots. CIFAR changes (autovul): stem
    3x3 stride-1 conv + BN + ReLU, level-1 conv stride 1 (instead of 2) and tree strides
    ``[1,2,2,2]``. Blocks = level0 … level5 (6); head = global avg-pool, ``Linear(512w, C)``.
    ``(N,3,32,32)`` → ``(N, num_classes)``; block outputs at 32,32,32,16,8,4 px.
    """
    c = [scale_channels(ch, width) for ch in (16, 32, 64, 128, 256, 512)]
    stem = _conv_bn_relu(3, c[0])
    blocks = [
        _conv_bn_relu(c[0], c[0]),                       # level0 (levels[0] = 1 conv)
        _conv_bn_relu(c[0], c[1], stride=1),             # level1 (stride 2 -> 1 for CIFAR)
        _DLALevel(_DLATree(1, c[1], c[2], stride=1, level_root=False)),   # level2
        _DLALevel(_DLATree(2, c[2], c[3], stride=2, level_root=True)),    # level3
        _DLALevel(_DLATree(2, c[3], c[4], stride=2, level_root=True)),    # level4
        _DLALevel(_DLATree(1, c[4], c[5], stride=2, level_root=True)),    # level5
    ]
    return ManualNet("dla34", stem, blocks, _classifier_head(c[5], num_classes), num_classes, width)


# --------------------------------------------------------------------------- VGG-13-BN


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


def vgg13_bn(num_classes: int = 10, width: float = 1.0) -> ManualNet:
    """CIFAR VGG-13-BN (autovul ``vgg13_bn_comp``; Pang et al., USENIX Security 2022).

    torchvision ``vgg13_bn`` features (cfg "B", conv widths x w, torchvision's VGG init); each
    conv-BN-ReLU(+max-pool) is a block (10). The stem is the identity (the first block's 3x3
    stride-1 conv reads the normalised image). Head: global avg-pool, then the artifact's MLP
    ``Linear(512w,512w)-ReLU-Dropout(0.5)-Linear(512w,512w)-ReLU-Dropout(0.5)-Linear(512w,C)``.
    ``(N,3,32,32)`` → ``(N, num_classes)``; last block output ``(N,512w,1,1)``.
    """
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
        ("dropout1", nn.Dropout(0.5)),
        ("fc2", nn.Linear(fc_dim, fc_dim)),
        ("relu2", nn.ReLU(inplace=True)),
        ("dropout2", nn.Dropout(0.5)),
        ("fc3", nn.Linear(fc_dim, num_classes)),
    ]))
    return ManualNet("vgg13_bn", nn.Identity(), blocks, head, num_classes, width)


# --------------------------------------------------------------------------- BiT-M-R50x1


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
    return ManualNet("bit_r50x1", stem, blocks, head, num_classes, width)


# --------------------------------------------------------------------------- registry

MANUAL_BUILDERS: dict[str, Callable[..., BlockNet]] = {
    "resnet18": resnet18,
    "resnext50_32x4d": resnext50_32x4d,
    "wide_resnet50_2": wide_resnet50_2,
    "densenet121": densenet121,
    "dla34": dla34,
    "vgg13_bn": vgg13_bn,
    "bit_r50x1": bit_r50x1,
}
"""Architecture name → ``builder(num_classes=10, width=1.0) -> BlockNet``."""
