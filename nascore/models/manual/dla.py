"""DLA-34 (Yu et al., CVPR 2018), CIFAR ``_comp`` variant, written out (see :mod:`nascore.models.manual`)."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .common import ManualNet, classifier_head, conv3x3, scale_channels

__all__ = ["DLAComp", "dla34"]


class DLAComp(ManualNet):
    """DLA-34 as a :class:`~nascore.models.manual.common.ManualNet`. Its own class (no new
    behaviour) so that a cached model's code fingerprint (:mod:`nascore.fingerprint`, the modules
    defining the model's classes) covers this module's builder."""


class _DLABasicBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a shortcut (given or the input), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
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
        ("conv", conv3x3(cin, cout, stride)),
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
    return DLAComp("dla34", stem, blocks, classifier_head(c[5], num_classes), num_classes, width)
