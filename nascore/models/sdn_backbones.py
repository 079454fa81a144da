"""The three DeepSloth backbones in CIFAR-10 geometry: VGG-16-BN, ResNet-56, MobileNet (v1).

Protocol ``deepsloth.md`` §1.1 (Hong et al., ICLR 2021, on top of Kaya et al., "Shallow-Deep
Networks", ICML 2019; architectures as in the authors' ``networks/SDNs/*.py``). Every builder
returns a :class:`~nascore.models.base.BlockNet` whose blocks are the units an internal classifier
(IC) follows in DeepSloth's every-layer layout (§1.2), so ``forward_with_taps`` gives one tap per IC:

=============  ======  =====================================================================
name           blocks  block = …
=============  ======  =====================================================================
vgg16_bn       14      conv3x3(+bias)-BN-ReLU(-maxpool 2) ×13 (64,64,M,128,128,M,256×3,M,
                       512×3,M,512×3,M), then FC-1 (flatten, Linear 512→512, ReLU, dropout 0.5)
resnet56       27      basic block (3×3 conv-BN-ReLU-3×3 conv-BN + shortcut), 3 stages × 9,
                       16/32/64 channels; the **tap is the residual sum before the final ReLU**
mobilenet_v1   13      depthwise 3×3-BN-ReLU + pointwise 1×1-BN-ReLU; 64, 128s2, 128, 256s2,
                       256, 512s2, 512×5, 1024s2, 1024
=============  ======  =====================================================================

Heads: VGG ``Linear 512→512, dropout 0.5, Linear 512→classes`` (no ReLU between, as in the
authors' code); ResNet ``avg-pool 8, Linear 64→classes``; MobileNet ``avg-pool 2, Linear
1024→classes``. Stems: VGG none, ResNet ``conv3x3 3→16-BN-ReLU``, MobileNet ``conv3x3 3→32-BN-ReLU``.

Inputs are **[0,1] images without normalisation** (protocol §1.1, fact 4: DeepSloth feeds raw
[0,1] pixels, so ε is in pixel units); ``model.normalize`` is the identity. Output: logits
``(N, classes)``. Input size 32×32 (the heads' fixed pooling assumes it).

``width`` multiplies every channel count and the VGG FC widths (rounded half up, at least 1, the
rule of :func:`nascore.models.manual.common.scale_channels`); ``width=1`` is the protocol's network.
``sdn_paper_blocks`` lists the 0-based blocks of the SDN paper's sparser IC layout (§1.2).
Initialisation follows the authors' ``initialize_weights``: conv ``N(0, 2/(k²·C_out))``, BN 1/0,
Linear ``N(0, 0.01)``, biases 0.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import nn

from .base import BlockNet

__all__ = ["SDN_BACKBONES", "SlothBackbone", "ResidualBlock", "vgg16_bn", "resnet56", "mobilenet_v1"]


def _scale(channels: int, width: float) -> int:
    """``channels * width`` rounded half up, at least 1 (as ``manual.scale_channels``)."""
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a finite number > 0, got {width!r}")
    return max(1, int(math.floor(channels * width + 0.5)))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            m.weight.data.normal_(0, 0.01)
            m.bias.data.zero_()


class SlothBackbone(BlockNet):
    """A DeepSloth backbone: ``normalize (identity) → stem → blocks → head``.

    Attributes: ``arch``, ``width``, ``num_classes``, ``sdn_paper_blocks`` (0-based block indices
    of the SDN paper's IC layout), ``weight_decay`` (the authors' CNN weight decay, reused for
    IC-only training, protocol §1.4).
    """

    def __init__(self, arch: str, stem: nn.Module, blocks: list[nn.Module], head: nn.Module,
                 num_classes: int, width: float, sdn_paper_blocks: tuple[int, ...], weight_decay: float):
        super().__init__()
        self.arch = arch
        self.width = float(width)
        self.num_classes = int(num_classes)
        self.sdn_paper_blocks = tuple(sdn_paper_blocks)
        self.weight_decay = float(weight_decay)
        self.normalize = nn.Identity()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        _init_weights(self)

    def iter_taps(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Lazily yield each block's tap ``(N, …)``, then the logits ``(N, classes)``.

        Stopping the iteration early skips the remaining blocks (early-exit inference)."""
        x = self.stem(self.normalize(x))
        for block in self.blocks:
            x = block(x)
            yield x
        yield self.head(x)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, width={self.width}, num_classes={self.num_classes}"


# --------------------------------------------------------------------------- VGG-16-BN

_VGG_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
_VGG_POOL_AFTER = frozenset({1, 3, 6, 9, 12})  # 0-based: max-pool after conv 2, 4, 7, 10, 13


def vgg16_bn(num_classes: int = 10, width: float = 1.0, dropout: float = 0.5) -> SlothBackbone:
    """VGG-16-BN for CIFAR-10 (protocol §1.1): 13 conv blocks + the FC-1 block = 14 blocks.

    ``dropout``: the two FC dropouts (0.5 in the authors' code; the CPU profiles turn them off, as
    for VGG-13-BN: a narrow VGG trained for one epoch under-fits with them).

    ``(N,3,32,32)`` in [0,1] → logits ``(N, num_classes)``; conv taps ``(N, C, s, s)`` with
    s = 32,16,16,8,8,8,4,4,4,2,2,2,1 (after the block's max-pool), FC-1 tap ``(N, 512w)``.
    """
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    blocks: list[nn.Module] = []
    cin = 3
    for i, c in enumerate(_VGG_CHANNELS):
        cout = _scale(c, width)
        layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        if i in _VGG_POOL_AFTER:
            layers.append(nn.MaxPool2d(2))
        blocks.append(nn.Sequential(*layers))
        cin = cout
    fc = _scale(512, width)
    blocks.append(nn.Sequential(nn.Flatten(1), nn.Linear(cin, fc), nn.ReLU(), nn.Dropout(dropout)))
    head = nn.Sequential(nn.Linear(fc, fc), nn.Dropout(dropout), nn.Linear(fc, num_classes))
    return SlothBackbone("vgg16_bn", nn.Identity(), blocks, head, num_classes, width,
                         sdn_paper_blocks=(1, 3, 5, 6, 8, 9), weight_decay=5e-4)


# --------------------------------------------------------------------------- ResNet-56


class ResidualBlock(nn.Module):
    """Basic residual block; :meth:`pre_activation` is the sum before the final ReLU.

    ``forward(x) = relu(pre_activation(x))``; shortcut = identity, or 1×1 conv + BN when the
    stride or width changes (the authors' ResNet-56).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pre_activation(x))


class _ResNet56(SlothBackbone):
    """ResNet-56 whose taps are the residual sums before each block's last ReLU (protocol §1.3)."""

    def features(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            s = block.pre_activation(x)
            if taps is not None:
                taps.append(s)
            x = block.act(s)
        return x

    def iter_taps(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        x = self.stem(self.normalize(x))
        for block in self.blocks:
            s = block.pre_activation(x)
            yield s
            x = block.act(s)
        yield self.head(x)


def resnet56(num_classes: int = 10, width: float = 1.0) -> SlothBackbone:
    """ResNet-56 for CIFAR-10 (protocol §1.1): 27 basic blocks = 27 taps (pre-ReLU sums).

    ``(N,3,32,32)`` in [0,1] → logits ``(N, num_classes)``; taps ``(N,16w,32,32)`` ×9,
    ``(N,32w,16,16)`` ×9, ``(N,64w,8,8)`` ×9.
    """
    c16 = _scale(16, width)
    stem = nn.Sequential(nn.Conv2d(3, c16, 3, padding=1, bias=False), nn.BatchNorm2d(c16), nn.ReLU())
    blocks: list[nn.Module] = []
    cin = c16
    for stage, c in enumerate((16, 32, 64)):
        cout = _scale(c, width)
        for i in range(9):
            blocks.append(ResidualBlock(cin, cout, stride=2 if (stage > 0 and i == 0) else 1))
            cin = cout
    head = nn.Sequential(nn.AvgPool2d(8), nn.Flatten(1), nn.Linear(cin, num_classes))
    return _ResNet56("resnet56", stem, blocks, head, num_classes, width,
                     sdn_paper_blocks=(3, 7, 11, 15, 19, 23), weight_decay=1e-4)


# --------------------------------------------------------------------------- MobileNet v1

_MOBILENET_CFG = (64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024)


def _depthwise_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def mobilenet_v1(num_classes: int = 10, width: float = 1.0) -> SlothBackbone:
    """MobileNet (v1) for CIFAR-10 (protocol §1.1): 13 depthwise-separable blocks = 13 taps.

    ``(N,3,32,32)`` in [0,1] → logits ``(N, num_classes)``; taps at 32,32,16,16,8,8,4×6,2,2 px.
    """
    c32 = _scale(32, width)
    stem = nn.Sequential(nn.Conv2d(3, c32, 3, padding=1, bias=False), nn.BatchNorm2d(c32), nn.ReLU())
    blocks: list[nn.Module] = []
    cin = c32
    for item in _MOBILENET_CFG:
        c, stride = item if isinstance(item, tuple) else (item, 1)
        cout = _scale(c, width)
        blocks.append(_depthwise_separable(cin, cout, stride))
        cin = cout
    head = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(1), nn.Linear(cin, num_classes))
    return SlothBackbone("mobilenet_v1", stem, blocks, head, num_classes, width,
                         sdn_paper_blocks=(2, 4, 6, 8, 11), weight_decay=1e-4)


SDN_BACKBONES = {"vgg16_bn": vgg16_bn, "resnet56": resnet56, "mobilenet_v1": mobilenet_v1}
"""Name → ``builder(num_classes=10, width=1.0) -> SlothBackbone``."""
