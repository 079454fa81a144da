"""Analytic per-exit inference cost of a multi-exit network (protocol ``deepsloth.md`` §2).

Operation counts per leaf module, multiplies and adds counted separately, as the authors'
profiler (``profiler.py`` of the DeepSloth and SDN repositories) counts them for one image:

==============  =====================================================================
module          operations
==============  =====================================================================
Conv2d          per output element ``2·k²·C_in/groups − 1`` (+1 with a bias)
BatchNorm2d     2 per input element
ReLU            1 per input element
MaxPool2d       ``k² − 1`` per output element
AvgPool2d       ``k²`` per output element
Linear          ``2·in − 1`` per output element (the bias is not counted)
Dropout, Flatten, Identity, empty Sequential: 0
==============  =====================================================================

**Grouped convolutions.** The authors' profiler multiplies a grouped convolution's count by the
number of groups once more (``num_out · ops · groups`` with ``ops`` already per group), which
over-counts MobileNet's depthwise convolutions by their channel count. The protocol's MobileNet
cost fractions (.032 .062 .168 …) are that count, so it is the default here
(``grouped_conv="deepsloth"``) to keep efficacies comparable with the paper;
``grouped_conv="exact"`` gives the true count. The two agree for every network without grouped
convolutions (VGG-16, ResNet-56).

Extensions for other backbones (not in the authors' profiler, which counts them as 0):
``AdaptiveAvgPool2d`` one op per input element, ``GroupNorm`` and nascore's input ``Normalize``
2 per element. Any other leaf module raises ``ValueError`` instead of being silently ignored.

The cost of exit ``k`` is the running total of every module executed up to and including IC
``k``'s head — **including all earlier IC heads** — and the final exit's cost includes every IC
head (the authors' convention). :func:`cost_fractions` divides by the final exit's cost.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models.base import BlockNet, eval_mode
from ..models.cost import GROUPED_CONV_COUNTS, operation_counts
from .taps import iter_taps

def _segment_owner(backbone: BlockNet, ics: nn.ModuleList | None) -> dict[nn.Module, tuple]:
    owner: dict[nn.Module, tuple] = {}
    parts = [(("stem",), backbone.normalize), (("stem",), backbone.stem), (("head",), backbone.head)]
    parts += [(("block", i), b) for i, b in enumerate(backbone.blocks)]
    parts += [(("ic", j), ic) for j, ic in enumerate(ics or [])]
    for key, part in parts:
        for m in part.modules():
            if len(list(m.children())) == 0:
                owner[m] = key
    return owner


def _count(backbone: BlockNet, ics: nn.ModuleList | None, ic_blocks: tuple[int, ...], image_size: int,
           grouped_conv: str) -> dict[tuple, int]:
    p = next(iter(backbone.parameters()), None)
    x = torch.zeros(1, 3, image_size, image_size, device=p.device if p is not None else "cpu")

    def forward_one_image() -> None:
        with eval_mode(backbone), eval_mode(ics if ics is not None else nn.Identity()):
            outs = list(iter_taps(backbone, x))
            for j, b in enumerate(ic_blocks):
                ics[j](outs[b])

    return operation_counts(_segment_owner(backbone, ics), forward_one_image, grouped_conv)


def block_costs(backbone: BlockNet, image_size: int = 32, grouped_conv: str = "deepsloth") -> dict:
    """Operations of the backbone's parts for one image: ``{"stem": int, "blocks": [int, …],
    "head": int}`` (the stem includes the input normalisation, if any)."""
    t = _count(backbone, None, (), image_size, grouped_conv)
    return {"stem": t.get(("stem",), 0), "blocks": [t.get(("block", i), 0) for i in range(len(backbone.blocks))],
            "head": t.get(("head",), 0)}


def exit_costs(sdn, image_size: int = 32, grouped_conv: str = "deepsloth") -> np.ndarray:
    """Absolute operations to reach each of the ``K + 1`` exits of ``sdn`` for one image, ``(K+1,)``
    int64, non-decreasing; the last entry is the whole SDN (backbone and every IC head)."""
    t = _count(sdn.backbone, sdn.ics, sdn.ic_blocks, image_size, grouped_conv)
    n_blocks = len(sdn.backbone.blocks)
    backbone_cum = np.cumsum([t.get(("stem",), 0)] + [t.get(("block", i), 0) for i in range(n_blocks)])
    ic_cum = np.cumsum([t.get(("ic", j), 0) for j in range(sdn.num_ics)])
    costs = [int(backbone_cum[b + 1] + ic_cum[j]) for j, b in enumerate(sdn.ic_blocks)]
    costs.append(int(backbone_cum[-1] + t.get(("head",), 0) + (ic_cum[-1] if len(ic_cum) else 0)))
    return np.asarray(costs, dtype=np.int64)


def cost_fractions(sdn, image_size: int = 32, grouped_conv: str = "deepsloth") -> np.ndarray:
    """:func:`exit_costs` divided by the full SDN's cost: ``(K+1,)`` in (0, 1], last entry 1."""
    c = exit_costs(sdn, image_size, grouped_conv).astype(np.float64)
    return c / c[-1]
