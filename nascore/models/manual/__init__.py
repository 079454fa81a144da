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

Modules: :mod:`~nascore.models.manual.common` (width knob, :class:`ManualNet`),
:mod:`~nascore.models.manual.resnet` (ResNet-18, ResNeXt-50, Wide-ResNet-50-2),
:mod:`~nascore.models.manual.densenet`, :mod:`~nascore.models.manual.dla`,
:mod:`~nascore.models.manual.vgg`, :mod:`~nascore.models.manual.bit`.
"""
from __future__ import annotations

from typing import Callable

from nascore.models.base import BlockNet

from .bit import PreActBottleneck, StdConv2d, bit_r50x1
from .common import ManualNet, gn_groups, scale_channels
from .densenet import densenet121
from .dla import dla34
from .resnet import resnet18, resnext50_32x4d, wide_resnet50_2
from .vgg import vgg13_bn

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

MANUAL_BUILDERS: dict[str, Callable[..., BlockNet]] = {
    builder.__name__: builder
    for builder in (resnet18, resnext50_32x4d, wide_resnet50_2, densenet121, dla34, vgg13_bn, bit_r50x1)
}
"""Architecture name → ``builder(num_classes=10, width=1.0) -> BlockNet``."""
